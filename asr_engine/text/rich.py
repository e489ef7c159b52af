"""SenseVoice's rich tags: the tag tables, FunASR's emoji post-processing, and plain-text helpers.

SenseVoice prefixes its text with ``<|lang|><|EMOTION|><|Event|><|itn|>`` tags (and may emit more of them
mid-utterance). ``rich_transcription_postprocess`` reproduces FunASR 1.4.16's user-side helper of that
name (funasr-spec §8.4) exactly, quirks included; ``strip_tags``/``parse_tags`` serve our own engine,
which keeps the text plain and reports language and tags as separate fields.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

__all__ = [
    "EMOTION_EMOJI",
    "EVENT_EMOJI",
    "LANGUAGE_TAGS",
    "TAG_EMOJI",
    "RichTags",
    "parse_tags",
    "rich_transcription_postprocess",
    "strip_tags",
]

log = logging.getLogger(__name__)

# Language tags; each one starts a new part in the post-processing.
LANGUAGE_TAGS: tuple[str, ...] = ("zh", "en", "yue", "ja", "ko", "nospeech")

# Emotion name -> emoji (NEUTRAL has none). Order matters: on equal counts the earlier one stays chosen.
EMOTION_EMOJI: dict[str, str] = {
    "HAPPY": "😊",
    "SAD": "😔",
    "ANGRY": "😡",
    "NEUTRAL": "",
    "FEARFUL": "😰",
    "DISGUSTED": "🤢",
    "SURPRISED": "😮",
}

# Event name -> emoji prepended when the event is present. Order matters: each present event is put in
# front of the text in turn, so the last present one ends up first. Cough is 🤧 here, as in FunASR.
EVENT_EMOJI: dict[str, str] = {
    "BGM": "🎼",
    "Speech": "",
    "Applause": "👏",
    "Laughter": "😀",
    "Cry": "😭",
    "Sneeze": "🤧",
    "Breath": "",
    "Cough": "🤧",
}

# Every tag the post-processing counts and deletes, in FunASR's order (this table maps Cough to 😷, but
# only its deletion is used; the emoji that appears comes from EVENT_EMOJI).
TAG_EMOJI: dict[str, str] = {
    "<|nospeech|><|Event_UNK|>": "❓",
    "<|zh|>": "",
    "<|en|>": "",
    "<|yue|>": "",
    "<|ja|>": "",
    "<|ko|>": "",
    "<|nospeech|>": "",
    "<|HAPPY|>": "😊",
    "<|SAD|>": "😔",
    "<|ANGRY|>": "😡",
    "<|NEUTRAL|>": "",
    "<|BGM|>": "🎼",
    "<|Speech|>": "",
    "<|Applause|>": "👏",
    "<|Laughter|>": "😀",
    "<|FEARFUL|>": "😰",
    "<|DISGUSTED|>": "🤢",
    "<|SURPRISED|>": "😮",
    "<|Cry|>": "😭",
    "<|EMO_UNKNOWN|>": "",
    "<|Sneeze|>": "🤧",
    "<|Breath|>": "",
    "<|Cough|>": "😷",
    "<|Sing|>": "",
    "<|Speech_Noise|>": "",
    "<|withitn|>": "",
    "<|woitn|>": "",
    "<|GBG|>": "",
    "<|Event_UNK|>": "",
}

# Emojis whose surrounding spaces are removed, and which count as a part's leading event / trailing emotion.
_EMOTION_SET = ("😊", "😔", "😡", "😰", "🤢", "😮")
_EVENT_SET = ("🎼", "👏", "😀", "😭", "🤧", "😷")

_NO_SPEECH_UNKNOWN_EVENT = "<|nospeech|><|Event_UNK|>"
_SPLIT = "<|lang|>"
_TAG = re.compile(r"<\|([^|<>]*)\|>")
_OTHER_TAGS = frozenset({"EMO_UNKNOWN", "Event_UNK", "Sing", "Speech_Noise", "GBG"})
_ITN_TAGS = frozenset({"withitn", "woitn"})


def _format_part(part: str) -> str:
    """One language part: delete tags, prepend event emojis, append the dominant emotion's emoji."""
    counts: dict[str, int] = {}
    for tag in TAG_EMOJI:
        counts[tag] = part.count(tag)
        part = part.replace(tag, "")
    emotion = "NEUTRAL"
    for name in EMOTION_EMOJI:
        if counts[f"<|{name}|>"] > counts[f"<|{emotion}|>"]:
            emotion = name
    for name, emoji in EVENT_EMOJI.items():
        if counts[f"<|{name}|>"] > 0:
            part = emoji + part
    part += EMOTION_EMOJI[emotion]
    for emoji in _EMOTION_SET + _EVENT_SET:
        part = part.replace(" " + emoji, emoji).replace(emoji + " ", emoji)
    return part.strip()


def _leading_event(text: str) -> str | None:
    return text[0] if text[0] in _EVENT_SET else None


def _trailing_emotion(text: str) -> str | None:
    return text[-1] if text[-1] in _EMOTION_SET else None


def rich_transcription_postprocess(text: str) -> str:
    """FunASR's rendering of a tagged SenseVoice string: tags become emojis, repeats across parts merge."""
    text = text.replace(_NO_SPEECH_UNKNOWN_EVENT, "❓")
    for lang in LANGUAGE_TAGS:
        text = text.replace(f"<|{lang}|>", _SPLIT)
    parts = [_format_part(p).strip(" ") for p in text.split(_SPLIT)]
    # FunASR starts from " " + part 0, so part 0's own event emoji is never the "current" one.
    out = " " + parts[0]
    current_event = _leading_event(out)
    for part in parts[1:]:
        if not part:
            continue
        event = _leading_event(part)
        if event is not None and event == current_event:
            part = part[1:]
        current_event = _leading_event(part) if part else None
        if part:
            emotion = _trailing_emotion(part)
            if emotion is not None and emotion == _trailing_emotion(out):
                out = out[:-1]
        out += part.strip()
    return out.replace("The.", " ").strip()


def strip_tags(text: str) -> str:
    """The text without any ``<|...|>`` tag, outer whitespace removed."""
    return _TAG.sub("", text).strip()


@dataclass(frozen=True, kw_only=True)
class RichTags:
    """What the tags of a SenseVoice string say: the first language tag and the emotion/event names."""

    language: str = ""
    tags: tuple[str, ...] = ()


def parse_tags(text: str) -> RichTags:
    """Language ("" when none, or for ``nospeech``) and emotion/event tag names in order, without repeats.

    Language and ITN tags are not in ``tags``; every emotion/event name the model emitted is, NEUTRAL and
    Speech included.
    """
    language = ""
    tags: list[str] = []
    for name in _TAG.findall(text):
        if name in LANGUAGE_TAGS:
            if not language and name != "nospeech":
                language = name
        elif name in _ITN_TAGS:
            continue
        elif (name in EMOTION_EMOJI or name in EVENT_EMOJI or name in _OTHER_TAGS) and name not in tags:
            tags.append(name)
    return RichTags(language=language, tags=tuple(tags))
