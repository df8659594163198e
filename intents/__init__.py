"""Understanding: turn (possibly mis-recognised, dialect-coloured) Mandarin into intents and slots."""
