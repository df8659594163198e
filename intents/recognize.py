"""The intent matcher (placeholder API; the real implementation is being written)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class IntentResult:
    """One understood utterance: intent name, confidence in 0..1 and canonical slots."""

    text: str
    intent: str
    confidence: float
    slots: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Wire form, exactly CONTRACTS.md §1."""
        return {"text": self.text, "intent": self.intent,
                "confidence": round(self.confidence, 3), "slots": dict(self.slots)}


class Recognizer:
    """Parses text into an IntentResult."""

    @classmethod
    def load(cls, data_dir: Path | None = None, *, accent_tolerant: bool = False) -> Recognizer:
        """Load the bundled intent data (or ``data_dir``) and precompute pinyin."""
        return cls()

    def parse(self, text: str) -> IntentResult:
        """Understand one utterance."""
        return IntentResult(text=text, intent="none", confidence=0.0)
