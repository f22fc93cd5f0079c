"""A safe parser and evaluator for ExecuteBillQuery's SQL-like FilterString (§4.1, §7.3).

Grammar (case-insensitive keywords)::

    expr      := term (OR term)*
    term      := factor (AND factor)*
    factor    := NOT factor | '(' expr ')' | predicate
    predicate := operand ( cmp operand | [NOT] LIKE string | [NOT] IN '(' literal (',' literal)* ')'
                          | [NOT] BETWEEN operand AND operand | IS [NOT] NULL )
    operand   := field | 'string' | number          cmp := = <> != > >= < <=

Anything else (``;``, comments, functions, sub-queries) is rejected. Nothing is ever evaluated as code. Logic is
SQL three-valued: a comparison with NULL is unknown and unknown rows are not returned.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Callable

from .values import parse_datetime, to_bool
from .wire import K3Error

KEYWORDS = {"AND", "OR", "NOT", "LIKE", "IN", "BETWEEN", "IS", "NULL"}
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^']|'')*')
  | (?P<num>-?\d+(?:\.\d+)?(?![A-Za-z_]))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)
  | (?P<op><>|!=|>=|<=|=|>|<)
  | (?P<punct>[(),])
""", re.VERBOSE)

Node = tuple[Any, ...]
# Resolves a field key to its value in the current row and its kind ("n", "i", "d", "b", "t", …).
Getter = Callable[[str], tuple[Any, str]]


def syntax_error(detail: str) -> K3Error:
    return K3Error(f"过滤条件(FilterString)语法错误：{detail}", 8, "FilterString")


def tokenize(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise syntax_error(f"位置{pos}附近的“{text[pos:pos + 10]}”无法识别")
        pos = m.end()
        kind = m.lastgroup
        value = m.group()
        if kind == "ws":
            continue
        if kind == "str":
            tokens.append(("lit", value[1:-1].replace("''", "'")))
        elif kind == "num":
            tokens.append(("lit", float(value)))
        elif kind == "name" and value.upper() in KEYWORDS:
            tokens.append(("kw", value.upper()))
        else:
            tokens.append((kind or "", value))
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any]], check_field: Callable[[str], None]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.check_field = check_field

    def peek(self, offset: int = 0) -> tuple[str, Any] | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def accept(self, kind: str, value: Any = None) -> bool:
        tok = self.peek()
        if tok and tok[0] == kind and (value is None or tok[1] == value):
            self.pos += 1
            return True
        return False

    def expect(self, kind: str, value: Any = None) -> tuple[str, Any]:
        tok = self.peek()
        if not self.accept(kind, value):
            raise syntax_error(f"此处应为{value or kind}，实际为“{tok[1] if tok else '结尾'}”")
        return tok  # type: ignore[return-value]

    def parse(self) -> Node:
        node = self.expr()
        if self.peek() is not None:
            raise syntax_error(f"多余的内容“{self.peek()[1]}”")  # type: ignore[index]
        return node

    def expr(self) -> Node:
        node = self.term()
        while self.accept("kw", "OR"):
            node = ("or", node, self.term())
        return node

    def term(self) -> Node:
        node = self.factor()
        while self.accept("kw", "AND"):
            node = ("and", node, self.factor())
        return node

    def factor(self) -> Node:
        if self.accept("kw", "NOT"):
            return ("not", self.factor())
        if self.accept("punct", "("):
            node = self.expr()
            self.expect("punct", ")")
            return node
        return self.predicate()

    def operand(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise syntax_error("条件不完整")
        if tok[0] == "lit":
            self.pos += 1
            return ("lit", tok[1])
        if tok[0] == "name":
            self.pos += 1
            self.check_field(tok[1])
            return ("field", tok[1])
        raise syntax_error(f"此处应为字段或常量，实际为“{tok[1]}”")

    def predicate(self) -> Node:
        left = self.operand()
        tok = self.peek()
        if tok and tok[0] == "op":
            self.pos += 1
            return ("cmp", "<>" if tok[1] == "!=" else tok[1], left, self.operand())
        if self.accept("kw", "IS"):
            negated = self.accept("kw", "NOT")
            self.expect("kw", "NULL")
            return ("isnull", left, negated)
        negated = self.accept("kw", "NOT")
        if self.accept("kw", "LIKE"):
            pattern = self.expect("lit")[1]
            if not isinstance(pattern, str):
                raise syntax_error("LIKE 后应为字符串")
            return ("like", left, like_regex(pattern), negated)
        if self.accept("kw", "IN"):
            self.expect("punct", "(")
            values = [self.expect("lit")[1]]
            while self.accept("punct", ","):
                values.append(self.expect("lit")[1])
            self.expect("punct", ")")
            return ("in", left, values, negated, {})  # the last: the values normalised per compare kind
        if self.accept("kw", "BETWEEN"):
            low = self.operand()
            self.expect("kw", "AND")
            return ("between", left, low, self.operand(), negated)
        raise syntax_error(f"字段后应为比较运算符，实际为“{tok[1] if tok else '结尾'}”")


def like_regex(pattern: str) -> re.Pattern[str]:
    """SQL Server LIKE: ``%`` any run, ``_`` one char, ``[...]`` a class (so ``[%]``, ``[_]``, ``[[]`` are literals)."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise syntax_error("LIKE 模式中的“[”没有闭合")
            body = pattern[i + 1:end]
            negate = body.startswith("^") and len(body) > 1
            chars = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + "".join(re.escape(c) if c != "-" else "-" for c in chars) + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def parse(text: str, check_field: Callable[[str], None]) -> Node | None:
    """Parse a FilterString; ``None`` for an empty filter. ``check_field`` raises for unknown keys (MsgCode 9)."""
    if not text or not text.strip():
        return None
    return _Parser(tokenize(text), check_field).parse()


# --- evaluation ------------------------------------------------------------------------------------------

def evaluate(node: Node | None, get: Getter) -> bool:
    return True if node is None else _eval(node, get) is True


def _eval(node: Node, get: Getter) -> bool | None:
    op = node[0]
    if op == "and":
        a, b = _eval(node[1], get), _eval(node[2], get)
        return False if False in (a, b) else (None if None in (a, b) else True)
    if op == "or":
        a, b = _eval(node[1], get), _eval(node[2], get)
        return True if True in (a, b) else (None if None in (a, b) else False)
    if op == "not":
        v = _eval(node[1], get)
        return None if v is None else not v
    if op == "cmp":
        return _eval_cmp(node, get)
    value, kind = _operand(node[1], get)
    if op == "isnull":
        return (value is not None) if node[2] else (value is None)
    if value is None:
        return None
    if op == "like":
        hit = node[2].fullmatch(_text(value)) is not None
        return hit != node[3]
    if op == "in":
        hit = _in_key(value, kind) in _in_set(node, value, kind)
        return hit != node[3]
    if op == "between":
        low, _ = _operand(node[2], get)
        high, _ = _operand(node[3], get)
        if low is None or high is None:
            return None
        hit = _compare(value, kind, low) >= 0 and _compare(value, kind, high) <= 0
        return hit != node[4]
    raise AssertionError(f"unknown node {op}")


def _eval_cmp(node: Node, get: Getter) -> bool | None:
    _, op, left, right = node
    lvalue, lkind = _operand(left, get)
    rvalue, rkind = _operand(right, get)
    if lvalue is None or rvalue is None:
        return None
    if left[0] == "lit" and right[0] == "field":  # literal on the left: convert it to the field's type
        cmp = -_compare(rvalue, rkind, lvalue)
    else:
        cmp = _compare(lvalue, lkind, rvalue)
    return {"=": cmp == 0, "<>": cmp != 0, ">": cmp > 0, ">=": cmp >= 0, "<": cmp < 0, "<=": cmp <= 0}[op]


def _operand(node: Node, get: Getter) -> tuple[Any, str]:
    if node[0] == "lit":
        return node[1], "n" if isinstance(node[1], float) else "t"
    return get(node[1])


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _collate(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().rstrip()


def _mode(value: Any, kind: str) -> str:
    """How ``_compare`` converts a row value of ``kind`` and a literal: d(ate), b(ool), n(umber) or t(ext)."""
    if kind in ("d", "b"):
        return kind
    if kind in ("n", "i") or isinstance(value, (int, float)) and not isinstance(value, bool):
        return "n"
    return "t"


def _convert(mode: str, value: Any) -> Any:
    if mode == "d":
        converted = parse_datetime(value)
        if converted is None:
            raise ValueError(value)
        return converted
    if mode == "b":
        return to_bool(value)
    if mode == "n":
        return float(value)
    return _collate(_text(value))


def _converted(mode: str, value: Any, named: Any) -> Any:
    """``value`` converted for ``mode``; SQL Server's conversion error (naming ``named``) when it cannot be."""
    try:
        return _convert(mode, value)
    except (TypeError, ValueError):
        raise K3Error(f"过滤条件(FilterString)中的值“{named}”无法转换为字段的类型。", 8, "FilterString") from None


def _in_key(value: Any, kind: str) -> Any:
    return _converted(_mode(value, kind), value, value)


def _in_set(node: Node, value: Any, kind: str) -> set:
    """The IN list's literals converted as ``_compare`` would for this row value, once per query and mode: a
    lookup per row instead of one conversion of both sides per literal (rows × literals), like the index
    seek SQL Server does. Equality of the converted values is what ``_compare(...) == 0`` tested."""
    mode = _mode(value, kind)
    cache = node[4]
    if mode not in cache:
        cache[mode] = {_converted(mode, v, v) for v in node[2]}
    return cache[mode]


def _compare(value: Any, kind: str, other: Any) -> int:
    """Compare a row value with a literal using the field's type, like SQL Server's implicit conversion
    (dates, booleans and numbers as such; text case- and width-insensitive, trailing blanks ignored)."""
    mode = _mode(value, kind)
    a, b = _converted(mode, value, other), _converted(mode, other, other)
    return (a > b) - (a < b)
