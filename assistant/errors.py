"""The one error hierarchy of yinling: every error we raise on purpose derives from YinlingError."""


class YinlingError(Exception):
    """Base class of all errors yinling raises deliberately; the message is one clear sentence."""


class ConfigError(YinlingError):
    """The configuration (file, environment or flags) is invalid; the CLI exits with code 2."""


class UsageError(YinlingError):
    """The command line was used wrongly; the CLI exits with code 2."""


class DataError(YinlingError):
    """A bundled data file (intents, lexicons, prompts) is malformed."""


class InputError(YinlingError):
    """Input from a user or another program cannot be processed (e.g. undecodable bytes)."""


class ModelError(YinlingError):
    """The speech model is missing, corrupt, or could not be downloaded or unpacked."""


class AudioDeviceError(YinlingError):
    """No usable microphone or loudspeaker (or PortAudio is missing); the assistant falls back to text."""


class SpeechError(YinlingError):
    """Speech synthesis is unavailable or failed (espeak-ng missing, unknown voice, bad settings)."""


class ReminderError(InputError):
    """A reminder request is invalid (bad time, weekday, medicine, dates); nothing was stored."""


class PlatformError(YinlingError):
    """The community platform (or its store) refused or could not handle a request."""


class ConflictError(PlatformError):
    """A request clashes with what the platform holds (an id reused with another body, a finished order)."""


class NotFoundError(PlatformError):
    """The order, alert or home named in a request does not exist (or is not visible to the caller)."""


class PlatformUnavailable(PlatformError):
    """The platform could not be reached or answered with a server error; try again later."""


class MqttError(YinlingError):
    """The MQTT bridge cannot be set up (bad TLS files, bad broker settings)."""


class EscalationError(YinlingError):
    """The escalation engine was given something it cannot act on (unknown step, bad incident data)."""
