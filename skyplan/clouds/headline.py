"""The first sentence of a provider's error text, for one-line attempt reports.

Provider texts arrive wrapped: by the SDK (``An error occurred (X) when calling
the RunInstances operation (reached max retries: 0): ...``, ``operation error
EC2: RunInstances, https response error StatusCode: 500, RequestID: ..., api
error X: ...``, ``googleapi: Error 400: ...``), by the Pulumi bridge
(``creating EC2 Instance: ...``), in XML (``<Message>``) or as ``Code="X"
Message="..."``. :func:`headline` unwraps them and keeps the provider's first
sentence, which is what a person reads to know why a placement failed. The
full text stays in the attempt's JSON and in the log file.

Cloud-neutral: it knows the shapes of wrappers, not clouds.
"""

from __future__ import annotations

import re

from skyplan.clouds.classify import provider_text

#: A headline longer than this (a provider text with no sentence end) is cut here, with an ellipsis.
MAX_CHARS = 300

_SPACES = re.compile(r"\s+")
# Where a structured error holds its message, tried in order. A quoted key may
# take either quote ({'Message': '...'}, {"message": "..."}); a bare key only a
# double quote (Azure's Message="...", gRPC's message:"..."), because a bare
# "message: '" is prose ("failed validation with message: 'The ...").
_MESSAGES = (
    re.compile(r"<Message>(.*?)(?:</Message>|$)", re.S),
    re.compile(r"""(["'])message\1\s*:\s*(?P<q>["'])(?P<m>.*?)(?:(?<!\\)(?P=q)|$)""", re.S | re.I),
    re.compile(r"""\bmessage\s*[:=]\s*(?:Some\()?"(?P<m>.*?)(?:(?<!\\)"|$)""", re.S | re.I),
    re.compile(r"\bmessage=(?P<m>[^\s\"'].*)$", re.S | re.I),
)
# A sentence ends at . ! or ? followed by a space (or the end): "p3.16xlarge" does not end one.
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
#: A leading "label: " is a wrapper when it is this short, or names the error's code.
_WRAPPER_WORDS = 6


def _inner_message(text: str) -> str:
    if '\\"' in text:  # JSON inside a string: \"message\": \"...\"
        text = text.replace('\\"', '"')
    for rx in _MESSAGES:
        m = rx.search(text)
        if m is not None:
            inner = (m.group("m") if "m" in rx.groupindex else m.group(1)).strip()
            if inner:
                return inner
    return text


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _strip_wrappers(text: str, code: str) -> str:
    """Drop leading ``label: `` segments. A label holds no quote and no sentence
    end, its brackets balance (so ``... (reached max retries: 0): `` is one label),
    and it is short or names the error's ``code`` (a long label is prose:
    ``Insufficient regional quota to satisfy request for resource: "CPUS"``)."""
    code_rx = re.compile(r"(?<![\w.])" + re.escape(code) + r"(?![\w])") if code else None
    if code_rx is not None:
        text = _after_code(text, code_rx)
    while True:
        end = _SENTENCE_END.search(text)
        limit = end.start() if end else len(text)
        cut = None
        for m in re.finditer(r":\s+", text[:limit]):
            label = text[: m.start()]
            if any(q in label for q in "'\"`") or not label.strip() or label.rstrip()[-1] in ".!?":
                break
            if not _balanced(label):
                continue
            if len(label.split()) <= _WRAPPER_WORDS or (code_rx is not None and code_rx.search(label)):
                cut = m.end()
            break
        if cut is None or not text[cut:].strip():
            return text
        text = text[cut:]


def _after_code(text: str, code_rx: re.Pattern[str]) -> str:
    """What follows the error's code when the code leads a label in the first
    sentence (``... api error X: <text>``, ``An error occurred (X) ...: <text>``,
    ``X <text>``)."""
    end = _SENTENCE_END.search(text)
    limit = end.start() if end else len(text)
    m = code_rx.search(text, 0, limit)
    if m is None:
        return text
    if m.start() == 0 and text[m.end():m.end() + 1] == " ":
        return text[m.end():].strip()
    for c in re.finditer(r":\s+", text[:limit]):
        if c.start() >= m.end() and _balanced(text[: c.start()]) and text[c.end():].strip():
            return text[c.end():]
    return text


def headline(message: object, code: str = "") -> str:
    """The provider's first sentence of ``message``, unwrapped; "" for no text.
    ``code``: the error's code, when known (a label naming it is a wrapper)."""
    text = _SPACES.sub(" ", provider_text(message)).strip()
    if not text:
        return ""
    text = _strip_wrappers(_SPACES.sub(" ", _inner_message(text)).strip(), code)
    if code and text.startswith(code + " "):
        text = text[len(code):].strip()
    end = _SENTENCE_END.search(text)
    first = text[: end.end()] if end else text
    first = first.strip().removeprefix("- ").rstrip(",;: ")
    if len(first) > MAX_CHARS:
        first = first[: MAX_CHARS - 1].rstrip() + "…"
    return first
