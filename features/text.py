"""Text clean-up shared by every standardiser: `Column -> Column`, native Spark only."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column
from pyspark.sql import functions as F

# Full-width ASCII forms (U+FF01..U+FF5E) and the ideographic space (U+3000) map one-to-one onto
# printable ASCII and the space; `translate` does that natively, without a Python UDF.
_FULL_WIDTH = "".join(chr(code) for code in range(0xFF01, 0xFF5F)) + "\u3000"
_HALF_WIDTH = "".join(chr(code) for code in range(0x21, 0x7F)) + " "


def to_half_width(text: Column) -> Column:
    """Map full-width Latin letters, digits, punctuation and the ideographic space to ASCII."""
    return F.translate(text, _FULL_WIDTH, _HALF_WIDTH)


def blank_to_null(text: Column) -> Column:
    """Null for null, empty or whitespace-only text; the text unchanged otherwise."""
    return F.when(F.trim(text) != F.lit(""), text)


def clean_text(text: Column) -> Column:
    """Half-width, lower case, whitespace runs folded to one space, trimmed; blank -> null."""
    folded = F.trim(F.regexp_replace(F.lower(to_half_width(text)), r"\s+", " "))
    return blank_to_null(folded)


def compact_key(text: Column) -> Column:
    """A key for exact comparison: `clean_text` without whitespace, punctuation or symbols."""
    key = F.regexp_replace(F.lower(to_half_width(text)), r"[\s\p{P}\p{S}]+", "")
    return blank_to_null(key)


def digits_only(text: Column) -> Column:
    """The digits of the text (full-width digits included); null when there are none."""
    return blank_to_null(F.regexp_replace(to_half_width(text), r"[^0-9]", ""))


def let(value: Column, body: Callable[[Column], Column]) -> Column:
    """`body(value)` with `value` computed once.

    Spark has no `let`: a sub-expression used n times is copied n times into the plan (and
    inside a higher-order function, evaluated again for every element), so generated code,
    compile time and run time grow with each copy. A lambda variable of a one-element
    `transform` is evaluated once.

    Spark 4.1 cannot evaluate a Python UDF whose argument holds a `let` nested in another
    `let`'s body that reads the outer variable (the UDF is left in the plan: "Cannot evaluate
    expression: PythonUDF"); chain them instead, as `features.names.strip_company_suffix` does.
    """
    return F.element_at(F.transform(F.array(value), body), 1)
