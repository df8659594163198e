"""yinling assistant: decide, remember and act on what the elder asked for."""
