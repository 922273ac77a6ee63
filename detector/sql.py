"""Statement analysis and literal-free fingerprints, cached by fingerprint.

Why this module exists
----------------------
Every access event may carry the SQL text that ran. The detector needs to know what a
statement *did* (action, relations, columns, whether it reads whole relations, exports them,
pages through them or enumerates keys) and needs a stable name for its *shape* (the
fingerprint) to count and report it. Parsing SQL is slow (sqlglot: ~0.1-1 ms), but real
workloads repeat a small number of shapes with different literal values, so the analysis is
done once per shape and cached under the fingerprint: the hot path is one regex split (C),
one Python look at each literal or comment found, and two dict look-ups (the key text by the
scan's literal-free skeleton, then the shape by the key). A statement without
literals (bind parameters, BEGIN/COMMIT) is also remembered by its exact text and then costs
one dict look-up. ``benchmarks/sql_fingerprint.py`` measures the cached path.

A shape depends on the fingerprint only: sqlglot parses the statement with every literal
replaced by a neutral stand-in of the same length ('' or 0) and comments blanked, so it never
sees a literal's value, and which statement of a shape happened to be seen first does not
matter. Shapes are cached under the fingerprint with the fingerprinter's own '?' told apart
from '?' placeholders that were already in the statement (literal indexes differ).

What it must never do
---------------------
* Never put a literal value (a phone number, an ID number, a name) anywhere except the
  ``literals`` tuple returned next to a fingerprint. Fingerprints, ``StatementShape`` fields
  and everything derived from them are literal-free; callers must not log or persist
  ``literals`` (they exist only to read key values and OFFSETs in memory).
  No cache keeps a literal value either. When the scanner is unsure whether text is a literal
  (a backslash before a quote means different things to MySQL and PostgreSQL), it hides it.
* Never raise on any input: text that sqlglot cannot parse falls back to a regex-based best
  effort (``StatementShape.parsed`` is then ``False``).
* Never log per statement (sqlglot's own warnings are silenced) and never compile a regex on
  the hot path.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import re
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice

import sqlglot
from sqlglot import exp

__all__ = [
    "ACTIONS",
    "StatementAnalyzer",
    "StatementShape",
    "fingerprint",
    "literal_as_int",
]

# sqlglot warns ("contains unsupported syntax, falling back to Command") for many ordinary
# statements (FETCH, LOCK, ALTER SYSTEM ...); that would be per-event logging.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

ACTIONS = ("SELECT", "INSERT", "UPDATE", "DELETE", "COPY", "EXPORT", "DDL", "OTHER")

MAX_PARSE_CHARS = 64 * 1024
"""Statements longer than this are fingerprinted but analysed by the regex fallback only,
and their shapes are not cached (they would make the cache's memory unbounded)."""

MAX_TEXT_CHARS = 4096
"""Only literal-free statements up to this long are remembered by their exact text."""

# Markers in the working text of the fingerprinter (never in its output).
_LIT = "\x00"  # a literal, later rendered as '?'
_QID = "\x01"  # a quoted identifier, put back verbatim (its case preserved) at the end
_LIT_COMMA, _LIT_SPACE_COMMA = _LIT + ",", _LIT + " ,"  # a list of literals may follow

# --------------------------------------------------------------------------------------
# Fingerprinting
# --------------------------------------------------------------------------------------

# One left-to-right scan for everything that is not plain SQL structure: comments, literals
# and quoted identifiers. Every alternative starts with the one character that can begin it,
# so the regex engine (in C) jumps from candidate character to candidate character and, at
# each, tries only the alternatives for that character (sre skips an alternative whose first
# character differs without running its look-behinds); that first character also tells the
# caller what the token is (_KIND_BY_LEAD). '.' is not a candidate: it is mostly in
# t.column, and '.5' is found at its digit. Digits inside identifiers (t1, seq_1_to_200)
# never match.
#
# Whether a backslash escapes a quote depends on the server: MySQL/MariaDB say yes, standard
# SQL (PostgreSQL's '...') says no, and only E'...' has escapes there. The main scan reads
# strings the MySQL way; a statement with a backslash before a quote that this reading
# leaves implausible is scanned again the standard way (see _scan).
_SQ_BODY = r"[^'\\]*(?:(?:\\[\s\S]|'')[^'\\]*)*"  # single-quoted body: '' and \' escapes
_SQ_STD_BODY = r"[^']*(?:''[^']*)*"  # standard: only ''; a backslash is an ordinary char
_DQ_BODY = r'[^"\\]*(?:(?:\\[\s\S]|"")[^"\\]*)*'
_NUMBER_TAIL = r"(?:[eE][+-]?\d+)?(?![\w$])"
_NUMBER_START = r"(?<![\w$.][0-9])"  # checked after its first digit: not t1, not a.5
# '.5' starts at its digit (a '.' is not worth a stop: it is mostly in t.column): the digit
# after a '.' that follows no word, and the caller adds the '.' to the literal.
_AFTER_DOT = r"(?<=\.[0-9])(?<![\w$.]\.[0-9])\d*" + _NUMBER_TAIL
_DECIMAL_REST = r"[\d_]*(?:\.\d*)?" + _NUMBER_TAIL
_NUMBERS = "\n      | ".join(
    [r"0(?:" + _NUMBER_START + r"(?:(?:[xX][0-9A-Fa-f]+|[bB][01]+)(?![\w$])|" + _DECIMAL_REST
     + ")|" + _AFTER_DOT + ")"]
    + [d + "(?:" + _NUMBER_START + _DECIMAL_REST + "|" + _AFTER_DOT + ")" for d in "123456789"]
)


def _scan_pattern(string_body: str, list_string_body: str) -> re.Pattern[str]:
    list_item = (
        r"(?:'" + list_string_body + r"'|[-+]?\s*(?:\d[\d_]*(?:\.\d*)?|\.\d+)" + _NUMBER_TAIL + ")"
    )
    # The common lists (plain integers, plain strings) first: the general item is slow in sre.
    simple_list = r"(?:\d++(?:\s*+,\s*+\d++)*+|'[^'\\]*+'(?:\s*+,\s*+'[^'\\]*+')*+)\s*+(?=\))"
    return re.compile(
        r"""(?P<token>
        -(?:-[^\n]*                                        # a comment, or a negative number
           |\s*(?:\d[\d_]*(?:\.\d*)?|\.\d+)""" + _NUMBER_TAIL + r""")
      | /\*[\s\S]*?(?:\*/|\Z)
      | \#(?<![^\s]\#)(?![>\-])[^\n]*                    # MySQL; not PostgreSQL #> #-
      | '""" + string_body + r"""(?:(?P<string_end>')|\\?\Z)  # or unterminated
      | \$(?P<tag>(?:[A-Za-z_][A-Za-z0-9_]*)?)\$[\s\S]*?(?:\$(?P=tag)\$|\Z)
        # "t"."c": lower-case and next to a dot, an identifier in every dialect
      | "(?:(?<=\.")|(?=[a-z_][a-z0-9_$]{0,62}"\.))(?P<dq_plain>[a-z_][a-z0-9_$]{0,62}")
      | \"""" + _DQ_BODY + r"""(?:"|\\?\Z)
      | `[^`]*(?:``[^`]*)*(?:`|\Z)
        # IN (1, 2, 3) / IN ('a', 'b'): the whole list is one literal
      | \((?:(?<=[iI][nN]\()(?<![\w$]\w\w\()|(?<=[iI][nN]\ \()(?<![\w$]\w\w\ \())
        \s*(?:""" + simple_list + r"""
           |""" + list_item + r"""(?:\s*,\s*""" + list_item + r""")*\s*(?=\)))
      | """ + _NUMBERS + r"""
        )""",
        re.VERBOSE,
    )


_SCAN_RE = _scan_pattern(_SQ_BODY, _SQ_BODY)
# E'...' keeps its escapes in the standard reading.
_SCAN_STD_RE = _scan_pattern(
    r"(?:(?<=[eE]')(?<![\w$][eE]')" + _SQ_BODY + "|" + _SQ_STD_BODY + ")", _SQ_STD_BODY
)
# E'..' B'..' X'..' N'..' U&'..' and MySQL charset introducers (_utf8mb4'..') belong to the
# string that follows them.
_STRING_PREFIX_RE = re.compile(r"(?<![\w$])(?:[eEbBxXnN]|[uU]&|_[A-Za-z0-9]{1,30})\Z")
_PREFIX_TAIL_CHARS = frozenset("eEbBxXnN&0123456789") | frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
)

# A double-quoted token is kept as an identifier only if it looks like one (ASCII word, no
# spaces) and is not in a value position; otherwise it is treated as a (MySQL) string
# literal. When unsure we hide it: a hidden identifier costs precision, a shown literal leaks.
_IDENT_LIKE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")
_WORD_AT_END_RE = re.compile(r"([A-Za-z_]+)\s*\Z")
_OPERATOR_CHARS = frozenset("=<>!|+-*/%^~&")
_VALUE_WORDS = frozenset(
    "like ilike rlike regexp then else between escape interval default separator against "
    "values value in".split()
)
_LIST_WORDS = frozenset(("in", "values", "value"))
# After these words (or an operator / '(' / ','), '-5' is a negative number, not 'x - 5'.
_SIGN_WORDS = frozenset(
    "select where and or not when then else in between values value by limit offset return "
    "returning is like ilike case having on interval fetch first next top distinct all any "
    "some set default escape array exists".split()
)
_SIGN_CHARS = frozenset("=<>!|+-*/%^~&(,[:")

# Lists of literals in the (lower-cased, whitespace-collapsed) working text.
_SEP = r" ?, ?"
_ITEMS = r" ?\x00(?:" + _SEP + r"\x00)*" + " ?"
_TUPLE = r"\(" + _ITEMS + r"\)"
_TUPLES = _TUPLE + r"(?:" + _SEP + _TUPLE + r")*"
# Each alternative starts with its first letter and checks the word boundary (\b) right after
# it: sre then jumps from i/v/a to i/v/a in C instead of trying every alternative everywhere.
_LIST_RE = re.compile(
    r"i(?<!\wi)n ?\((?P<in>" + _ITEMS + r")\)"
    r"|i(?<!\wi)n ?\( ?(?P<intuples>" + _TUPLES + r") ?\)"
    r"|v(?<!\wv)alue(?P<plural>s?) ?(?P<values>" + _TUPLES + r")"
    r"|a(?<!\wa)rray ?\[(?P<array>" + _ITEMS + r")\]"
)


def _previous_char(source: str, pos: int) -> tuple[str, int]:
    """The last non-space character before ``pos`` and its index ('' and -1 if none)."""
    i = pos - 1
    while i >= 0 and source[i].isspace():
        i -= 1
    return (source[i], i) if i >= 0 else ("", -1)


def _previous_word(source: str, end: int) -> str:
    m = _WORD_AT_END_RE.search(source, max(0, end - 24), end)
    return m.group(1).lower() if m else ""


def _minus_is_sign(source: str, minus_at: int) -> bool:
    char, i = _previous_char(source, minus_at)
    if not char or char in _SIGN_CHARS:
        return True
    if char.isalpha() or char == "_":
        return _previous_word(source, i + 1) in _SIGN_WORDS
    return False


def _in_value_position(source: str, start: int, end: int) -> bool:
    if source.startswith(".", end):
        return False  # "schema"."table"
    char, i = _previous_char(source, start)
    if not char or char == ".":
        return False
    if char in _OPERATOR_CHARS:
        return True
    if char in "(,":
        paren = source.rfind("(", 0, start)
        if paren < 0:
            return False
        before, j = _previous_char(source, paren)
        if before == ",":  # VALUES (...), ("x", ...)
            return _previous_char(source, j)[0] == ")"
        return _previous_word(source, paren) in _LIST_WORDS
    if char.isalpha():
        return _previous_word(source, i + 1) in _VALUE_WORDS
    return False


def _is_quoted_identifier(source: str, start: int, end: int) -> bool:
    """Is the double-quoted token source[start:end] an identifier (else a MySQL string)?"""
    if end - start <= 2 or source[end - 1] != '"':
        return False
    if _IDENT_LIKE_RE.fullmatch(source, start + 1, end - 1) is None:
        return False
    if source.startswith(".", end) or (start and source[start - 1] == "."):
        return True  # "schema"."table", "t"."column"
    return not _in_value_position(source, start, end)


def _string_prefix(source: str, quote_at: int) -> int:
    """Where the string literal whose opening quote is at ``quote_at`` starts (its prefix)."""
    m = _STRING_PREFIX_RE.search(source, max(0, quote_at - 32), quote_at)
    return m.start() if m else quote_at


# _SCAN_RE.split(source) gives [text, token, <one entry per group>..., text, ...]: the entries
# of the match that follows text parts[i] are parts[i + group index]. Few groups: each costs.
_G = _SCAN_RE.groupindex
_STRIDE = _SCAN_RE.groups + 1
_G_STRING_END, _G_DQ_PLAIN = _G["string_end"], _G["dq_plain"]
# What a token is, by its first character (each alternative of _SCAN_RE has its own).
_NUMBER, _STRING, _IN_LIST, _MINUS, _COMMENT, _DOLLAR, _DQUOTE, _BTICK = range(8)
_KIND_BY_LEAD = {c: _NUMBER for c in "0123456789"} | {
    "'": _STRING, "(": _IN_LIST, "-": _MINUS, "/": _COMMENT, "#": _COMMENT, "$": _DOLLAR,
    '"': _DQUOTE, "`": _BTICK,
}
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")
_WORD_RE = re.compile(r"[\w$]+")
# Words that may follow a string with no space in between ('a'AND b = 1); any other word
# right after a closing quote means the quotes were paired wrongly.
_GLUE_WORDS = frozenset(
    "and or then else end when from where as is not in like ilike between collate escape "
    "order group limit union having on using into for".split()
)


def _glued_word(source: str, end: int) -> bool:
    """Is the string that ends at ``end`` glued to a word that cannot follow a string?"""
    if end >= len(source) or source[end] not in _WORD_CHARS:
        return False
    word = _WORD_RE.match(source, end)
    return word is None or word[0].lower() not in _GLUE_WORDS


# A prefix letter left in the working text right before a string's marker (see _scan).
_PREFIX_BEFORE_MARKER_RE = re.compile(
    r"(?<![\w$])(?:[eEbBxXnN]|[uU]&|_[A-Za-z0-9]{1,30})(?=\x00)"
)


# One scan of a statement: (key, literals, starts, comments, source). ``key`` is the
# fingerprint with the fingerprinter's own literals still marked (_LIT) and bind placeholders
# ('?', '$1') as written: unlike the fingerprint text it tells a '?' that stands for a
# literal from a '?' that was in the statement, so it is what shapes are cached under
# (literal indexes depend on it). ``starts[i]`` is where ``literals[i]`` begins in ``source``;
# ``comments`` are the [start, end) spans of the comments. A plain tuple: this is the hot path.
_Scanned = tuple[str, tuple[str, ...], list[int], list[tuple[int, int]], str]


def _fingerprint_text(key: str) -> str:
    """The fingerprint text of a scan key: every literal marker rendered as '?'."""
    return key.replace(_LIT, "?") if _LIT in key else key


def _scan(source: str) -> _Scanned:
    """The hot path: one regex split (C), then one look at each token found.

    A statement with a backslash right before a quote is read the MySQL way first; if that
    leaves a string glued to a word (``'C:\\' AND name = 'O''Brien'`` read the MySQL way ends
    a string right before ``O``) or unterminated, it is read the standard way; if both readings
    are implausible, everything from the first string on is one literal. When unsure, hide.
    """
    scanned, implausible = _scan_with(_SCAN_RE, source, "\\'" in source)
    if not implausible:
        return scanned
    standard, implausible = _scan_with(_SCAN_STD_RE, source, True)
    if not implausible:
        return standard
    return _hide_from_first_string(scanned)


def _scan_with(pattern: re.Pattern[str], source: str, check: bool) -> tuple[_Scanned, bool]:
    """One reading of ``source``; ``check`` also tells whether a string looks misread.

    ``pattern.split`` finds every token in C and hands them over in one list, so Python
    looks at each token once, with no per-token callback.
    """
    parts = pattern.split(source)
    last = len(parts) - 1
    literals: list[str] = []
    starts: list[int] = []
    comments: list[tuple[int, int]] = []
    quoted: list[str] = []
    prefixed = misread = False
    if last:
        out: list[str] = []
        add_text, add_literal, add_start = out.append, literals.append, starts.append
        pos = 0  # where the current text part starts in source
        for i in range(0, last, _STRIDE):
            piece = parts[i]
            add_text(piece)
            pos += len(piece)
            token = parts[i + 1]
            end = pos + len(token)
            kind = _KIND_BY_LEAD[token[0]]
            if kind == _NUMBER:
                if piece[-1:] == ".":  # '.5': the '.' ends the text part before it
                    out[-1] = piece[:-1]
                    add_literal("." + token)
                    add_start(pos - 1)
                else:
                    add_literal(token)
                    add_start(pos)
                add_text(_LIT)
            elif kind == _STRING:
                start = pos
                if pos and source[pos - 1] in _PREFIX_TAIL_CHARS:
                    start = _string_prefix(source, pos)
                    if start != pos:
                        prefixed = True  # the prefix letter is removed from the text later
                    elif check and source[pos - 1] in _WORD_CHARS:
                        misread = True  # brien'...: a string cannot follow a word
                if check and (parts[i + _G_STRING_END] is None or _glued_word(source, end)):
                    misread = True  # unterminated, or '..'brien
                add_literal(source[start:end] if start != pos else token)
                add_start(start)
                add_text(_LIT)
            elif kind == _IN_LIST:
                stripped = token[1:].lstrip()  # the token is '(' and the items
                add_literal(stripped.rstrip())
                add_start(end - len(stripped))
                add_text("(" + _LIT)
            elif kind == _DOLLAR:
                add_literal(token)
                add_start(pos)
                add_text(_LIT)
            elif kind == _COMMENT or (kind == _MINUS and token[1:2] == "-"):
                comments.append((pos, end))
                add_text(" ")
            elif kind == _MINUS:
                digits = token[1:].lstrip()
                if _minus_is_sign(source, pos):  # '-5' after an operator or keyword
                    add_literal(token)
                    add_start(pos)
                    add_text(_LIT)
                else:  # 'x - 5': the '-' is an operator
                    add_literal(digits)
                    add_start(end - len(digits))
                    add_text(token[: len(token) - len(digits)] + _LIT)
            elif parts[i + _G_DQ_PLAIN] is not None:
                add_text(token)
            elif kind == _BTICK or (
                "`" not in source and _is_quoted_identifier(source, pos, end)
            ):
                if token.islower() or token.lower() == token:
                    add_text(token)  # lower-casing the text will not change it
                else:
                    quoted.append(token)
                    add_text(_QID)
            else:  # a "..." string (MySQL)
                add_literal(token)
                add_start(pos)
                add_text(_LIT)
            pos = end
        add_text(parts[last])
        skeleton = "".join(out)
    else:
        skeleton = source
    text, groups = _key_text(skeleton) if literals and not prefixed else _normalised(skeleton, prefixed)
    if groups:
        literals, starts = _merge_lists(groups, source, literals, starts)
    if quoted:
        pieces = text.split(_QID)
        joined = [pieces[0]]
        for name, piece in zip(quoted, pieces[1:]):
            joined.append(name)
            joined.append(piece)
        text = "".join(joined)
    return (text, tuple(literals), starts, comments, source), misread


def _collapse_whitespace(text: str) -> str:
    """Runs of spaces, tabs and line breaks as one space (str.replace: cheaper than split)."""
    text = text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    while "  " in text:
        text = text.replace("  ", " ")
    return text


def _hide_from_first_string(scanned: _Scanned) -> _Scanned:
    """The whole rest of the statement, from its first string literal on, as one literal."""
    _key, literals, starts, _comments, source = scanned
    cut = next((s for s, lit in zip(starts, literals) if "'" in lit), None)
    if cut is None:
        return scanned
    key, literals, starts, comments, _ = _scan_with(_SCAN_RE, source[:cut], False)[0]
    glue = " " if key and source[cut - 1].isspace() else ""
    return key + glue + _LIT, literals + (source[cut:],), starts + [cut], comments, source


# A list of literals collapsed into one: the indexes of its first and last literal, and whether
# it is a list of tuples (VALUES (..), (..) / IN ((..), (..))), whose outer parentheses it keeps.
_ListGroup = tuple[int, int, bool]
_KeyText = tuple[str, tuple[_ListGroup, ...]]

MAX_KEY_TEXTS = 4096
"""Bound of the cache of key texts by skeleton (the oldest tenth is dropped when it is full);
only skeletons up to ``MAX_TEXT_CHARS`` long are kept."""
_KEY_TEXTS: dict[str, _KeyText] = {}


def _key_text(skeleton: str) -> _KeyText:
    """The key text of a scanned statement's skeleton, and the lists of literals it collapses.

    The skeleton is what the scan keeps of a statement with literals: its text with every
    literal a marker and comments blanked, as literal-free as the fingerprint. Statements of
    one shape mostly share it (only their literals differ), so the key text is cached by
    skeleton: a repeated shape then skips the whitespace, case and list work. (Statements
    without literals are remembered whole by the analyzer; skeletons with string prefixes
    left in them are rare; neither is cached here.)"""
    found = _KEY_TEXTS.get(skeleton)
    if found is None:
        found = _normalised(skeleton, False)
        if len(skeleton) <= MAX_TEXT_CHARS:
            if len(_KEY_TEXTS) >= MAX_KEY_TEXTS:
                for old in list(islice(_KEY_TEXTS, MAX_KEY_TEXTS // 10)):
                    _KEY_TEXTS.pop(old, None)
            _KEY_TEXTS[skeleton] = found
    return found


def _normalised(skeleton: str, prefixed: bool) -> _KeyText:
    """Whitespace collapsed, lower-cased, trailing ';' dropped, string prefixes removed and
    lists of literals collapsed to one marker each (see ``fingerprint``)."""
    text = skeleton.strip()
    if "  " in text or "\n" in text or "\t" in text or "\r" in text:
        text = _collapse_whitespace(text)
    text = text.lower().rstrip("; ")
    if _LIT not in text:
        return text, ()
    if prefixed:
        text = _PREFIX_BEFORE_MARKER_RE.sub("", text)
    if _LIT_COMMA in text or _LIT_SPACE_COMMA in text or "values" in text or "array" in text:
        return _collapse_lists(text)
    return text, ()


def _collapse_lists(text: str) -> _KeyText:
    """Replace IN/VALUES/ARRAY lists of literals by one marker; say which literals each held."""
    out_text: list[str] = []
    groups: list[_ListGroup] = []
    taken = 0  # literals consumed so far
    last = 0
    for m in _LIST_RE.finditer(text):
        taken += text.count(_LIT, last, m.start())
        final = taken + m.group().count(_LIT) - 1
        if m.group("in") is not None:
            replacement, tuples = "in (" + _LIT + ")", False
        elif m.group("array") is not None:
            replacement, tuples = "array[" + _LIT + "]", False
        else:  # VALUES tuples or IN of tuples
            keyword = "value" + m.group("plural") if m.group("values") is not None else "in"
            replacement, tuples = f"{keyword} ({_LIT})", True
        out_text.append(text[last : m.start()])
        out_text.append(replacement)
        groups.append((taken, final, tuples))
        taken = final + 1
        last = m.end()
    out_text.append(text[last:])
    return "".join(out_text), tuple(groups)


def _merge_lists(
    groups: tuple[_ListGroup, ...], source: str, literals: list[str], starts: list[int]
) -> tuple[list[str], list[int]]:
    """The literals with each collapsed list made one literal holding the raw list text."""
    out_literals: list[str] = []
    out_starts: list[int] = []
    taken = 0  # literals consumed so far
    for first, final, tuples in groups:
        out_literals.extend(literals[taken:first])
        out_starts.extend(starts[taken:first])
        start, end = starts[first], starts[final] + len(literals[final])
        if tuples:  # keep the outer parentheses of the tuples
            start = max(0, source.rfind("(", 0, start))
            close = source.find(")", end)
            end = close + 1 if close >= 0 else end
        out_literals.append(source[start:end])
        out_starts.append(start)
        taken = final + 1
    out_literals.extend(literals[taken:])
    out_starts.extend(starts[taken:])
    return out_literals, out_starts


@dataclass(frozen=True, slots=True)
class _Fingerprinted:
    """A scanned statement, with what the (uncached) analysis needs besides the fingerprint."""

    text: str
    literals: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]  # [start, end) of each literal in `source`
    comments: tuple[tuple[int, int], ...]  # [start, end) of each comment in `source`
    source: str  # the statement as scanned (NUL/marker characters blanked)

    @classmethod
    def of(cls, scanned: _Scanned) -> _Fingerprinted:
        key, literals, starts, comments, source = scanned
        spans = tuple((s, s + len(lit)) for s, lit in zip(starts, literals))
        return cls(_fingerprint_text(key), literals, spans, tuple(comments), source)


def _as_text(statement: object) -> str:
    if isinstance(statement, str):
        text = statement
    elif isinstance(statement, (bytes, bytearray, memoryview)):
        text = bytes(statement).decode("utf-8", "replace")
    else:
        return ""
    if _LIT in text or _QID in text:
        text = text.replace(_LIT, " ").replace(_QID, " ")  # same length: spans stay valid
    return text


def fingerprint(statement: str) -> tuple[str, tuple[str, ...]]:
    """Return (fingerprint_text, literals).

    fingerprint_text is the statement with every literal replaced by '?', comments removed,
    runs of spaces, tabs and line breaks collapsed to one space, lower-cased outside quoted
    identifiers, IN (...) / ARRAY[...] lists of literals collapsed to 'in (?)' / 'array[?]',
    VALUES lists of literal tuples collapsed to 'values (?)', and trailing ';' removed. Two
    statements that differ only in literal values or list lengths get the same text.

    Each '?' the fingerprinter produced corresponds to exactly one entry of ``literals``, in
    order; a collapsed list is one entry holding the raw list text (IN: the text between the
    parentheses; VALUES: all tuples with their parentheses). Literals are the raw source text
    (quotes, E prefix and sign included). Bind placeholders already in the text ($1, ?, %s,
    :name) are kept as they are and are not literals - so a statement that already contains
    JDBC-style '?' placeholders has more '?' than literals.
    """
    key, literals, _starts, _comments, _source = _scan(_as_text(statement))
    return _fingerprint_text(key), literals


_INT_RE = re.compile(r"[+-]?\d{1,4000}", re.ASCII)
_HEX_RE = re.compile(r"[+-]?0[xX][0-9A-Fa-f]{1,1000}", re.ASCII)


def literal_as_int(literals: tuple[str, ...], index: int | None) -> int | None:
    """Numeric value of a literal (quoted digits like '13800000001' count), else None.

    Used for sequential-key enumeration and OFFSET paging. Decimals, lists and non-numeric
    strings give None; so does an index out of range.
    """
    if index is None or not isinstance(index, int) or not 0 <= index < len(literals):
        return None
    raw = literals[index]
    if not isinstance(raw, str):
        return None
    raw = raw.strip()
    if len(raw) >= 2 and raw[-1] == "'":
        quote = raw.find("'")
        if quote > 1 or (quote == 1 and raw[0] not in "eEnN"):
            return None  # B'0101', X'1F', U&'..' and charset introducers are not numbers
        raw = raw[quote + 1 : -1].strip()
    else:
        raw = raw.replace(" ", "").replace("\t", "").replace("\n", "")  # '- 5'
    if _INT_RE.fullmatch(raw):
        return int(raw)
    if _HEX_RE.fullmatch(raw):
        return int(raw, 16)
    return None


# --------------------------------------------------------------------------------------
# Statement shape
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatementShape:
    """What a statement shape does. Literal-free: safe to log, persist and put in alerts."""

    fingerprint: str
    fingerprint_id: str
    action: str
    relations: tuple[str, ...]
    columns: tuple[tuple[str | None, str], ...]
    star_relations: tuple[str, ...]
    is_export: bool
    has_where: bool
    has_limit: bool
    is_aggregate: bool
    key_column: str | None
    key_literal_index: int | None
    offset_literal_index: int | None
    parsed: bool
    keyset_literal_index: int | None = None    # the bound of `WHERE k > ? ORDER BY k LIMIT n` (a keyset page)


def fingerprint_id(fingerprint_text: str) -> str:
    """16 hex chars: blake2b(fingerprint, digest_size=8)."""
    data = fingerprint_text.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=8).hexdigest()


@dataclass(slots=True)
class _Facts:
    """What the parse or the regex fallback found, before it is frozen into a shape."""

    action: str = "OTHER"
    relations: list[str] | None = None
    columns: list[tuple[str | None, str]] | None = None
    star_relations: list[str] | None = None
    is_export: bool = False
    has_where: bool = False
    has_limit: bool = False
    is_aggregate: bool = False
    key_column: str | None = None
    key_literal_index: int | None = None
    offset_literal_index: int | None = None
    parsed: bool = True
    keyset_literal_index: int | None = None

    def shape(self, fp_text: str) -> StatementShape:
        return StatementShape(
            fingerprint=fp_text,
            fingerprint_id=fingerprint_id(fp_text),
            action=self.action,
            relations=_unique(self.relations or ()),
            columns=_unique(self.columns or ()),
            star_relations=_unique(self.star_relations or ()),
            is_export=self.is_export,
            has_where=self.has_where,
            has_limit=self.has_limit,
            is_aggregate=self.is_aggregate,
            key_column=self.key_column,
            key_literal_index=self.key_literal_index,
            offset_literal_index=self.offset_literal_index,
            parsed=self.parsed,
            keyset_literal_index=self.keyset_literal_index,
        )


def _unique(items) -> tuple:
    return tuple(dict.fromkeys(items))


# ---- preparing the original text for sqlglot (every edit keeps character positions) -----

_LEAD = r"^(?:\s+|/\*[\s\S]*?\*/|--[^\n]*(?:\n|\Z))*"
_NAME = r"(?:\"[^\"]*\"|`[^`]*`|[\w$]+)"
_DECLARE_RE = re.compile(
    _LEAD + r"(declare\s+" + _NAME + r"\s+(?:(?:binary|insensitive|asensitive|scroll|no\s+scroll)"
    r"\s+)*cursor\s+(?:with(?:out)?\s+hold\s+)?for)\s",
    re.I,
)
_PREPARE_AS_RE = re.compile(_LEAD + r"(prepare\s+" + _NAME + r"\s*(?:\([^)]*\))?\s*as)\s", re.I)
_BACKSLASH_COPY_RE = re.compile(_LEAD + r"(\\)copy\b", re.I)
_COPY_BINARY_RE = re.compile(_LEAD + r"\\?copy\s+(binary)\s", re.I)
_COPY_TARGET_RE = re.compile(
    r"\b(?:to|from)\s+(?:stdout|stdin|program\s+(?=')|(?='))", re.I
)
_OUTFILE_RE = re.compile(
    r"\binto\s+(?:outfile|dumpfile)\s+'" + _SQ_BODY + r"'"
    r"(?:\s+(?:character\s+set\s+[\w$]+|fields|columns|lines|optionally"
    r"|(?:terminated|enclosed|escaped|starting)\s+by\s+'" + _SQ_BODY + r"'))*",
    re.I,
)


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def _in_span(spans: tuple[tuple[int, int], ...], starts: list[int], pos: int) -> int | None:
    """Index of the literal whose span contains ``pos``, else None."""
    i = bisect.bisect_right(starts, pos) - 1
    if i >= 0 and pos < spans[i][1]:
        return i
    return None


@dataclass(slots=True)
class _Prepared:
    text: str
    is_outfile: bool = False


def _parse_text(fp: _Fingerprinted) -> str:
    """The statement as sqlglot sees it: comments blanked, every literal a stand-in.

    The parser never sees a literal's value, so nothing it returns can carry one, and the
    shape cached for a fingerprint does not depend on which of its statements was seen first
    (``x = 1_000``, ``x = .5e3`` and ``x = 7`` parse alike). Lengths are kept: the spans of
    the literals stay valid.
    """
    if not fp.literals and not fp.comments:
        return fp.source
    chars = list(fp.source)
    for start, end in fp.comments:
        chars[start:end] = " " * (end - start)
    for (start, end), literal in zip(fp.spans, fp.literals):
        chars[start:end] = _stand_in(literal, end - start)
    return "".join(chars)


def _stand_in(literal: str, length: int) -> str:
    """A literal of the same kind and length: (0) for VALUES tuples, '' for strings, else 0."""
    if literal.startswith("("):
        return "(0)" + " " * (length - 3)  # VALUES (..), (..) / IN ((..), (..))
    if length >= 2 and (literal[0] in "\"$" or "'" in literal[:34]):
        return "''" + " " * (length - 2)  # '..', E'..', _utf8mb4'..', "..", $$..$$
    return "0" + " " * (length - 1)


def _prepare(fp: _Fingerprinted, starts: list[int]) -> _Prepared:
    text = _parse_text(fp)
    for pattern in (_DECLARE_RE, _PREPARE_AS_RE, _BACKSLASH_COPY_RE, _COPY_BINARY_RE):
        m = pattern.match(text)
        if m:
            text = _blank(text, m.start(1), m.end(1))
            break
    is_outfile = False
    if "into outfile" in fp.text or "into dumpfile" in fp.text:
        m = _OUTFILE_RE.search(text)
        if m:
            text = _blank(text, m.start(), m.end())
            is_outfile = True
    if fp.text.startswith(("copy ", "\\copy ")):
        text = _strip_copy_options(text, fp, starts)
    return _Prepared(text, is_outfile)


def _strip_copy_options(text: str, fp: _Fingerprinted, starts: list[int]) -> str:
    """COPY options vary by server version and sqlglot parses few of them; they don't matter."""
    target_end = None
    for m in _COPY_TARGET_RE.finditer(text):
        if _in_span(fp.spans, starts, m.start()) is not None:
            continue  # inside a literal
        target_end = m.end()
        literal = _in_span(fp.spans, starts, m.end())
        if literal is not None:
            target_end = fp.spans[literal][1]
    if target_end is None:
        return text
    tail = text[target_end:]
    trailing = len(tail) - len(tail.rstrip().rstrip(";").rstrip())
    return _blank(text, target_end, len(text) - trailing) if trailing < len(tail) else text


def _parse(text: str, mysql_first: bool) -> list[exp.Expression] | None:
    dialects = ("mysql", "postgres") if mysql_first else ("postgres", "mysql")
    for dialect in dialects:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                statements = sqlglot.parse(text, read=dialect)
        except Exception as exc:  # ParseError, TokenError, RecursionError, sqlglot bugs
            _release_frames(exc)
            continue
        nodes = [s for s in statements if s is not None]
        if nodes:
            return nodes
    return None


def _release_frames(error: BaseException) -> None:
    """Let a caught parse error free its frames now rather than at the next cyclic collection.

    sqlglot's parser keeps the errors it raises (``parser.errors``): error -> traceback ->
    the parser's frame -> parser -> error is a cycle that reference counting never frees, and
    the traceback's frames hold their callers' frames, up to the pipeline's with its whole
    batch of events. Until the cyclic collector runs, every failed parse kept a batch (10,000
    events) alive, and the collector then had hundreds of thousands of objects to scan.
    Clearing the traceback's frames and dropping it breaks the cycle."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        traceback.clear_frames(error.__traceback__)   # skips the frames still running (ours)
        error.__traceback__ = None
        error = error.__context__


_MYSQL_HINT_RE = re.compile(r"`|\blimit \? ?, ?\?|\binto (?:outfile|dumpfile)\b")


def _looks_mysql(fp: _Fingerprinted) -> bool:
    """Try MySQL first? Decided on the fingerprint alone, like everything else cached."""
    return _MYSQL_HINT_RE.search(fp.text) is not None


# ---- reading facts off a sqlglot tree ------------------------------------------------------


def _cls(*names: str) -> tuple[type, ...]:
    return tuple(getattr(exp, n) for n in names if isinstance(getattr(exp, n, None), type))


_SELECT_NODES = _cls("Select", "SetOperation", "Union", "Intersect", "Except", "Subquery")
_DDL_NODES = _cls(
    "Create", "Drop", "Alter", "AlterTable", "TruncateTable", "Grant", "Revoke", "Comment",
    "RenameTable",
)
_SCOPE_NODES = (exp.Select, exp.Update, exp.Delete)
# Aggregates whose single result row still carries the rows' values.
_DATA_AGGREGATES = _cls(
    "GroupConcat", "ArrayAgg", "ArrayUniqueAgg", "ArrayConcatAgg", "JSONArrayAgg",
    "JSONObjectAgg", "JSONBObjectAgg", "ObjectAgg", "AnyValue", "First", "Last", "FirstValue",
    "LastValue",
)
_DDL_WORDS = frozenset("CREATE ALTER DROP TRUNCATE GRANT REVOKE COMMENT RENAME".split())
_GAVE_UP_WORDS = frozenset("SELECT WITH INSERT REPLACE UPDATE DELETE COPY MERGE TABLE".split())
_PRIORITY = {"EXPORT": 0, "COPY": 1, "SELECT": 2, "INSERT": 3, "UPDATE": 4, "DELETE": 5,
             "DDL": 6, "OTHER": 7}


def _action_of(node: exp.Expression, is_outfile: bool) -> str:
    if isinstance(node, exp.Copy):
        return "COPY"
    if isinstance(node, _SELECT_NODES):
        return "EXPORT" if is_outfile else "SELECT"
    if isinstance(node, exp.Insert):
        return "INSERT"
    if isinstance(node, (exp.Update, exp.Merge)):
        return "UPDATE"
    if isinstance(node, exp.Delete):
        return "DELETE"
    if isinstance(node, _DDL_NODES):
        return "DDL"
    if isinstance(node, exp.Command) and str(node.this).upper() in _DDL_WORDS:
        return "DDL"
    return "OTHER"


def _table_name(table: exp.Table) -> str | None:
    if not isinstance(table.this, exp.Identifier):
        return None  # a table function: generate_series(...), unnest(...)
    return ".".join(p for p in (table.catalog, table.db, table.name) if p).lower() or None


def _unwrap_query(node: exp.Expression | None) -> exp.Expression | None:
    while isinstance(node, (exp.Subquery, exp.Paren)):
        node = node.this
    return node


class _Tree:
    """Relations, aliases and scopes of one parsed statement."""

    def __init__(self, root: exp.Expression, literal_at: Callable[[int], int | None]) -> None:
        self.root = root
        self.literal_at = literal_at
        self.cte_bodies: dict[str, exp.Expression] = {}
        for cte in root.find_all(exp.CTE):
            if cte.alias:
                self.cte_bodies[cte.alias.lower()] = cte.this
        self.relations: list[str] = []
        aliases: dict[str, set[str]] = {}
        for table in root.find_all(exp.Table):
            name = self.real_table(table)
            if name is None:
                continue
            self.relations.append(name)
            aliases.setdefault(table.alias_or_name.lower(), set()).add(name)
        self.unique_relations = tuple(dict.fromkeys(self.relations))
        self.global_alias = {a: next(iter(r)) for a, r in aliases.items() if len(r) == 1}
        self._sources: dict[int, dict[str, exp.Expression]] = {}

    def hidden(self, node: exp.Expression) -> bool:
        """True when sqlglot's node sits inside one of our literals (never report it)."""
        start = node.meta.get("start") if node.meta else None
        return start is not None and self.literal_at(start) is not None

    def real_table(self, table: exp.Table) -> str | None:
        name = _table_name(table)
        if name is None or self.hidden(table.this):
            return None
        if not table.db and name in self.cte_bodies:
            return None
        return name

    def sources(self, scope: exp.Expression) -> dict[str, exp.Expression]:
        """alias -> Table or query body, for the FROM / JOIN / target of one scope."""
        cached = self._sources.get(id(scope))
        if cached is not None:
            return cached
        items: list[exp.Expression] = []
        from_ = scope.args.get("from_") or scope.args.get("from")
        if from_ is not None:
            items.append(from_.this)
            items.extend(from_.expressions or ())
        items.extend(j.this for j in scope.args.get("joins") or ())
        if isinstance(scope, (exp.Update, exp.Delete)) and scope.this is not None:
            items.append(scope.this)
        items.extend(scope.args.get("using") or ())
        out: dict[str, exp.Expression] = {}
        for item in items:
            if isinstance(item, exp.Table):
                out[item.alias_or_name.lower()] = item
            elif isinstance(item, exp.Subquery) and item.alias:
                out[item.alias.lower()] = item.this
        self._sources[id(scope)] = out
        return out

    def relation_of_source(self, source: exp.Expression, depth: int = 0) -> str | None:
        """The relation behind a source: itself, or the only relation inside a CTE/subquery."""
        if isinstance(source, exp.Table):
            name = _table_name(source)
            if name is None:
                return None
            if not source.db and name in self.cte_bodies:
                source = self.cte_bodies[name]
            else:
                return name
        found = self._underlying(source, depth)
        return next(iter(found)) if len(found) == 1 else None

    def _underlying(self, body: exp.Expression, depth: int) -> set[str]:
        found: set[str] = set()
        if depth > 8:
            return found
        for table in body.find_all(exp.Table):
            name = _table_name(table)
            if name is None:
                continue
            if not table.db and name in self.cte_bodies:
                found |= self._underlying(self.cte_bodies[name], depth + 1)
            else:
                found.add(name)
        return found

    def is_star_source(self, source: exp.Expression) -> str | None:
        if isinstance(source, exp.Table):
            return self.real_table(source)
        return None

    def resolve_qualifier(self, qualifier: str, scope: exp.Expression | None) -> str | None:
        while scope is not None:
            source = self.sources(scope).get(qualifier)
            if source is not None:
                return self.relation_of_source(source)
            scope = scope.find_ancestor(*_SCOPE_NODES)
        return self.global_alias.get(qualifier)

    def resolve_column(self, column: exp.Column) -> str | None:
        scope = column.find_ancestor(*_SCOPE_NODES)
        qualifier = column.table.lower()
        if qualifier:
            return self.resolve_qualifier(qualifier, scope)
        if scope is not None:
            sources = self.sources(scope)
            if len(sources) == 1:
                relation = self.relation_of_source(next(iter(sources.values())))
                if relation is not None:
                    return relation
        if len(self.unique_relations) == 1:
            return self.unique_relations[0]
        return None


def _select_aliases(scope: exp.Expression | None) -> set[str]:
    if not isinstance(scope, exp.Select):
        return set()
    return {e.alias.lower() for e in scope.expressions if isinstance(e, exp.Alias) and e.alias}


def _columns_and_stars(tree: _Tree) -> tuple[list[tuple[str | None, str]], list[str]]:
    columns: list[tuple[str | None, str]] = []
    stars: list[str] = []
    for select in tree.root.find_all(exp.Select):
        if isinstance(select.parent, exp.Exists):
            continue  # EXISTS (SELECT * ...) reads no columns out
        for item in select.expressions:
            item = item.unalias()
            if isinstance(item, exp.Star):
                for source in tree.sources(select).values():
                    name = tree.is_star_source(source)
                    if name:
                        stars.append(name)
            elif isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
                source = tree.sources(select).get(item.table.lower())
                name = tree.is_star_source(source) if source is not None else None
                if name:
                    stars.append(name)
    for column in tree.root.find_all(exp.Column):
        if isinstance(column.this, exp.Star) or tree.hidden(column.this):
            continue
        name = column.name.lower()
        if not name:
            continue
        scope = column.find_ancestor(*_SCOPE_NODES)
        if not column.table and name in _select_aliases(scope):
            continue  # ORDER BY n, where n is a select-list alias
        columns.append((tree.resolve_column(column), name))
    columns.extend((name, "*") for name in dict.fromkeys(stars))
    return columns, stars


def _target_columns(node: exp.Expression, tree: _Tree) -> list[tuple[str | None, str]]:
    """INSERT INTO t (a, b) / COPY t (a, b): column lists are identifiers, not columns."""
    target = node.this
    if not isinstance(target, exp.Schema) or not isinstance(target.this, exp.Table):
        return []
    relation = tree.real_table(target.this)
    return [
        (relation, ident.name.lower())
        for ident in target.expressions
        if isinstance(ident, exp.Identifier) and not tree.hidden(ident)
    ]


def _leaf_selects(node: exp.Expression | None) -> list[exp.Select]:
    node = _unwrap_query(node)
    if isinstance(node, exp.Select):
        return [node]
    if isinstance(node, exp.SetOperation):
        return _leaf_selects(node.left) + _leaf_selects(node.right)
    return []


def _is_aggregate(select: exp.Select) -> bool:
    if select.args.get("group") or not select.expressions:
        return False
    for item in select.expressions:
        item = item.unalias()
        if item.find(exp.Window):
            return False
        aggregates = list(item.find_all(exp.AggFunc))
        if not aggregates or any(isinstance(a, _DATA_AGGREGATES) for a in aggregates):
            return False
        if any(c.find_ancestor(exp.AggFunc) is None for c in item.find_all(exp.Column)):
            return False
    return True


def _value_literal(node: exp.Expression) -> exp.Expression | None:
    """The literal or bind placeholder under casts/signs/parentheses, else None."""
    while isinstance(node, (exp.Cast, exp.Neg, exp.Paren)):
        node = node.this
    if isinstance(node, (exp.Literal, exp.Placeholder, exp.Parameter)):
        return node
    return None


def _key_lookup(where: exp.Where | None, tree: _Tree) -> tuple[str | None, int | None]:
    if where is None:
        return None, None
    conjuncts = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    conjuncts = [_unwrap_paren(c) for c in conjuncts]
    if not all(isinstance(c, (exp.EQ, exp.Is)) for c in conjuncts):
        return None, None
    for condition in conjuncts:
        if not isinstance(condition, exp.EQ):
            continue
        for col, val in ((condition.this, condition.expression),
                         (condition.expression, condition.this)):
            value = _value_literal(val) if isinstance(col, exp.Column) else None
            if value is None or tree.hidden(col.this):
                continue
            index = None
            if isinstance(value, exp.Literal) and value.meta.get("start") is not None:
                index = tree.literal_at(value.meta["start"])
            return col.name.lower(), index
    return None, None


def _unwrap_paren(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _offset_index(query: exp.Expression | None, tree: _Tree) -> int | None:
    offset = query.args.get("offset") if query is not None else None
    if offset is None:
        return None
    value = _value_literal(offset.expression if offset.expression is not None else offset.this)
    if isinstance(value, exp.Literal) and value.meta.get("start") is not None:
        return tree.literal_at(value.meta["start"])
    return None


_KEYSET_BOUNDS = {False: (exp.GT, exp.GTE), True: (exp.LT, exp.LTE)}    # by ORDER BY ... DESC


def _keyset_index(query: exp.Select, tree: _Tree) -> int | None:
    """The literal bound of a keyset page, `WHERE k > ? ORDER BY k LIMIT n` (`<` with DESC): the way
    a script walks a table page by page without OFFSET, each page starting after the last key read."""
    order, where = query.args.get("order"), query.args.get("where")
    if order is None or where is None or not order.expressions:
        return None
    first = order.expressions[0]
    column = first.this if isinstance(first, exp.Ordered) else first
    if not isinstance(column, exp.Column):
        return None
    bounds = _KEYSET_BOUNDS[bool(first.args.get("desc"))] if isinstance(first, exp.Ordered) else _KEYSET_BOUNDS[False]
    conjuncts = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    for condition in map(_unwrap_paren, conjuncts):
        if isinstance(condition, bounds) and isinstance(condition.this, exp.Column) \
                and condition.this.name.lower() == column.name.lower():
            value = _value_literal(condition.expression)
            if isinstance(value, exp.Literal) and value.meta.get("start") is not None:
                return tree.literal_at(value.meta["start"])
    return None


def _reading_query(node: exp.Expression) -> exp.Expression | None:
    """The query whose WHERE/LIMIT/OFFSET describe how much of the data is read."""
    if isinstance(node, exp.Copy):
        return _unwrap_query(node.this) if isinstance(node.this, exp.Subquery) else None
    if isinstance(node, exp.Insert):
        return _unwrap_query(node.expression)
    if isinstance(node, (exp.Update, exp.Delete)):
        return node
    return _unwrap_query(node)


def _facts_from_tree(node: exp.Expression, tree: _Tree, is_outfile: bool) -> _Facts:
    facts = _Facts(action=_action_of(node, is_outfile), relations=list(tree.relations))
    if isinstance(node, exp.Command) and str(node.this).upper() in _GAVE_UP_WORDS:
        raise _GaveUp  # sqlglot could not parse a data statement: use the regex fallback
    if facts.action == "OTHER":
        if not isinstance(node, (exp.Describe, exp.Use)):
            facts.relations = []
        return facts
    facts.columns, facts.star_relations = _columns_and_stars(tree)
    facts.columns += _target_columns(node, tree)
    if isinstance(node, exp.Copy):
        facts.is_export = not node.args.get("kind")  # kind True = FROM
        target = node.this
        if isinstance(target, exp.Table) and facts.is_export:
            name = tree.real_table(target)
            if name:
                facts.star_relations.append(name)
                facts.columns.append((name, "*"))
    facts.is_export = facts.is_export or is_outfile
    query = _reading_query(node)
    if query is not None:
        leaves = _leaf_selects(query) if not isinstance(query, (exp.Update, exp.Delete)) else []
        if isinstance(query, (exp.Update, exp.Delete)):
            facts.has_where = query.args.get("where") is not None
        else:
            facts.has_where = bool(leaves) and all(s.args.get("where") for s in leaves)
        facts.has_limit = query.args.get("limit") is not None or (
            len(leaves) == 1 and leaves[0].args.get("limit") is not None
        )
        facts.is_aggregate = len(leaves) == 1 and leaves[0] is query and _is_aggregate(query)
        if isinstance(query, (exp.Select, exp.Update, exp.Delete)):
            facts.key_column, facts.key_literal_index = _key_lookup(query.args.get("where"), tree)
        facts.offset_literal_index = _offset_index(query, tree)
        if isinstance(query, exp.Select) and facts.has_limit and facts.offset_literal_index is None:
            facts.keyset_literal_index = _keyset_index(query, tree)
    return facts


class _GaveUp(Exception):
    pass


def _merge(facts: list[_Facts]) -> _Facts:
    """Several statements in one text: the most telling one decides, relations add up."""
    main = min(facts, key=lambda f: _PRIORITY[f.action])
    for other in facts:
        if other is main:
            continue
        main.relations = (main.relations or []) + (other.relations or [])
        main.columns = (main.columns or []) + (other.columns or [])
        main.star_relations = (main.star_relations or []) + (other.star_relations or [])
        main.is_export = main.is_export or other.is_export
    return main


def _parsed_facts(fp: _Fingerprinted) -> _Facts | None:
    starts = [s for s, _ in fp.spans]

    def literal_at(pos: int) -> int | None:
        return _in_span(fp.spans, starts, pos)

    prepared = _prepare(fp, starts)
    nodes = _parse(prepared.text, _looks_mysql(fp))
    if nodes is None:
        return None
    try:
        facts = [_facts_from_tree(n, _Tree(n, literal_at), prepared.is_outfile) for n in nodes]
    except _GaveUp:
        return None
    return _merge(facts)


# ---- regex fallback (runs on the literal-free fingerprint text) ---------------------------

_FB_IDENT = r"(?:[\w$]+|\"[^\"]*\"|`[^`]*`)"
_FB_RELATION_RE = re.compile(
    r"\b(?:from|join|into|update|table|copy)\s+(?:only\s+)?(?!select\b|lateral\b|outfile\b"
    r"|dumpfile\b|stdout\b|stdin\b)(" + _FB_IDENT + r"(?:\." + _FB_IDENT + r"){0,2})"
)
_FB_CTE_RE = re.compile(r"(?:\bwith\s+(?:recursive\s+)?|,\s*)([\w$]+)\s+as\s*\(")
_FB_FIRST_WORD_RE = re.compile(r"\\?[a-z]+")
_FB_DATA_WORDS = {
    "select": "SELECT", "with": "SELECT", "table": "SELECT", "values": "SELECT",
    "insert": "INSERT", "replace": "INSERT", "update": "UPDATE", "merge": "UPDATE",
    "delete": "DELETE", "copy": "COPY", "\\copy": "COPY",
}
_FB_COPY_TO_RE = re.compile(r"^\\?copy\s.*\bto\s+(?:stdout\b|program\b|\?)", re.S)
_FB_COPY_TABLE_NO_COLUMNS_RE = re.compile(r"^\\?copy\s+(?:binary\s+)?" + _FB_IDENT + r"(?:\.\S+)?\s+to\b")
_FB_OUTFILE_RE = re.compile(r"\binto\s+(?:outfile|dumpfile)\b")
_FB_STAR_RE = re.compile(r"\bselect\s+(?:distinct\s+)?(?:[\w$]+\.)?\*|\.\*")
_FB_LIMIT_RE = re.compile(r"\blimit\b|\bfetch\s+(?:first|next)\b|\btop\s")
_FB_DECLARE_RE = re.compile(r"^declare\s+\S+\s+.*?\bcursor\b.*?\bfor\s+(select|with|values)\b")
_FB_WRITE_IN_WITH_RE = re.compile(r"\)\s*(insert|update|delete)\b")


def _fallback_facts(fp_text: str) -> _Facts:
    facts = _Facts(parsed=False)
    first = _FB_FIRST_WORD_RE.match(fp_text)
    word = first.group() if first else ""
    facts.action = _FB_DATA_WORDS.get(word, "OTHER")
    if word in ("create", "alter", "drop", "truncate", "grant", "revoke", "comment", "rename"):
        facts.action = "DDL"
    elif word == "declare" and _FB_DECLARE_RE.match(fp_text):
        facts.action = "SELECT"
    elif word == "with":
        m = _FB_WRITE_IN_WITH_RE.search(fp_text)
        facts.action = m.group(1).upper() if m else "SELECT"
    ctes = set(_FB_CTE_RE.findall(fp_text))
    relations = [
        r.replace('"', "").replace("`", "").lower() for r in _FB_RELATION_RE.findall(fp_text)
    ]
    facts.relations = [r for r in relations if r not in ctes]
    if facts.action in ("OTHER",):
        facts.relations = []
        return facts
    is_copy_to = facts.action == "COPY" and _FB_COPY_TO_RE.match(fp_text) is not None
    facts.is_export = is_copy_to or _FB_OUTFILE_RE.search(fp_text) is not None
    if facts.is_export and facts.action == "SELECT":
        facts.action = "EXPORT"
    whole = _FB_STAR_RE.search(fp_text) is not None or (
        is_copy_to and _FB_COPY_TABLE_NO_COLUMNS_RE.match(fp_text) is not None
    )
    if whole:  # conservative: without a parse, any star reads every relation in full
        facts.star_relations = list(facts.relations)
        facts.columns = [(r, "*") for r in facts.relations]
    facts.has_where = " where " in fp_text
    facts.has_limit = _FB_LIMIT_RE.search(fp_text) is not None
    return facts


# ---- the cache -------------------------------------------------------------------------


def _analyse(fp: _Fingerprinted) -> StatementShape:
    facts = None
    if len(fp.source) <= MAX_PARSE_CHARS and fp.text:
        try:
            facts = _parsed_facts(fp)
        except Exception:  # a sqlglot bug or a tree we did not expect: degrade, don't fail
            facts = None
    if facts is None:
        try:
            facts = _fallback_facts(fp.text)
        except Exception:
            facts = _Facts(parsed=False)
    return facts.shape(fp.text)


class StatementAnalyzer:
    """Caches StatementShape by fingerprint, and literal-free statements by their exact text.

    Two bounded caches:

    * shapes, by fingerprint (with bind placeholders told apart from literals): when
      ``max_shapes`` is reached the oldest tenth is dropped (FIFO), so a burst of new shapes
      never makes every hot shape re-parse at once;
    * the shape by the exact text of statements that have no literal at all (bind-parameter
      statements, BEGIN/COMMIT/SET ...), up to ``MAX_TEXT_CHARS`` long: those repeat verbatim
      and skip even the scan. Statements with literals are not kept - they rarely repeat
      verbatim, and this way no cache ever holds a literal value. Emptied when ``max_texts``
      is reached; ``max_texts=0`` turns it off.
    """

    __slots__ = ("_max_shapes", "_max_texts", "_shapes", "_texts")

    def __init__(self, max_shapes: int = 200_000, max_texts: int = 4096) -> None:
        if not isinstance(max_shapes, int) or max_shapes < 1:
            raise ValueError(f"max_shapes must be a positive integer, got {max_shapes!r}")
        if not isinstance(max_texts, int) or max_texts < 0:
            raise ValueError(f"max_texts must be a non-negative integer, got {max_texts!r}")
        self._shapes: dict[str, StatementShape] = {}
        self._max_shapes = max_shapes
        self._texts: dict[str, tuple[StatementShape, tuple[str, ...]]] = {}  # literal-free
        self._max_texts = max_texts

    def analyze(self, statement: str) -> tuple[StatementShape, tuple[str, ...]]:
        """(shape, literals). Never raises; literals must not be logged or persisted."""
        exact = type(statement) is str
        if exact:
            found = self._texts.get(statement)
            if found is not None:
                return found
        try:
            scanned = _scan(
                statement if exact and _LIT not in statement and _QID not in statement
                else _as_text(statement)
            )
        except Exception:  # defensive: the scanner is total, but this must never raise
            return _Facts(parsed=False).shape(""), ()
        shape = self._shapes.get(scanned[0])
        if shape is None:
            shape = _analyse(_Fingerprinted.of(scanned))
            if len(scanned[4]) <= MAX_PARSE_CHARS:
                self._remember(scanned[0], shape)
        literals = scanned[1]
        if not literals and exact and len(statement) <= MAX_TEXT_CHARS and self._max_texts:
            if len(self._texts) >= self._max_texts:
                self._texts.clear()
            self._texts[statement] = (shape, literals)
        return shape, literals

    def _remember(self, key: str, shape: StatementShape) -> None:
        if len(self._shapes) >= self._max_shapes:
            for old in list(islice(self._shapes, max(1, self._max_shapes // 10))):
                del self._shapes[old]
        self._shapes[key] = shape

    @property
    def cache_size(self) -> int:
        """Number of cached shapes (fingerprints), not of cached statement texts."""
        return len(self._shapes)
