"""Each registered transform: good values convert, bad values become one message each (never an exception)."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from fxiaoke_k3cloud.mapping.transforms import REGISTRY, TransformArgError, TransformContext

CTX = TransformContext(timezone="Asia/Shanghai")
EMPTY = object()  # expected output: an empty value (None/NaN), which the engine treats as missing


def run(name: str, values: list, **args):
    series = pd.Series(values, dtype=object)
    out = REGISTRY[name].func(series, CTX, **args)
    errors = {} if out.errors is None else out.errors.to_dict()
    good = [v for i, v in out.values.items() if i not in errors]
    return good, errors


# name, args, input, expected good outputs (in order), expected bad positions
CASES = [
    ("strip", {}, ["  a ", "b", "\tc\n"], ["a", "b", "c"], []),
    ("strip", {}, ["x", ["list"], {"d": 1}], ["x"], [1, 2]),
    ("upper", {}, ["cust-01", "Ab"], ["CUST-01", "AB"], []),
    ("lower", {}, ["ABC", "ÄÖ"], ["abc", "äö"], []),
    ("truncate", {"max": 3}, ["abcdef", "ab", "😀😀😀😀"], ["abc", "ab", "😀😀😀"], []),
    ("digits_only", {}, ["91-3100 0000", "abc"], ["9131000000", ""], []),
    ("phone", {}, ["13800000000", "+86 (21) 5555-1234", "021-55551234 ext 12", "abc", "12", "1" * 25],
     ["13800000000", "+86 (21) 5555-1234", "021-55551234 ext 12"], [3, 4, 5]),
    ("decimal", {}, ["1,234.50", "12", 7, 2.5, "-3.25", ".5"],
     [Decimal("1234.50"), Decimal("12"), Decimal(7), Decimal("2.5"), Decimal("-3.25"), Decimal(".5")], []),
    ("decimal", {}, ["abc", "1,2,3", "NaN", "inf", float("nan"), True, "1.2.3", "12,34"], [], [0, 1, 2, 3, 4, 5, 6, 7]),
    ("positive", {}, ["1", "0.01", "0", "-1", "x"], [Decimal(1), Decimal("0.01")], [2, 3, 4]),
    ("non_negative", {}, ["0", "5", "-0.01"], [Decimal(0), Decimal(5)], [2]),
    ("int", {}, ["12", 3.0, "1,000", "1.5", "z"], [12, 3, 1000], [3, 4]),
    ("bool_str", {}, [True, False, "yes", "否", 1, "0", "maybe", 7], ["true", "false", "true", "false", "true", "false"],
     [6, 7]),
    ("first", {}, [["FSUID_1", "FSUID_2"], "solo", []], ["FSUID_1", "solo", EMPTY], []),
    # 2023-11-14 22:13:20 UTC is 2023-11-15 06:13:20 in Shanghai: the date must move to the 15th.
    ("ms_to_date", {}, [1700000000000, "1700000000000", "garbage", 1e20], ["2023-11-15", "2023-11-15"], [2, 3]),
    # A Decimal is a number here as elsewhere; a signalling NaN or an int beyond float is a bad value, not a crash.
    ("ms_to_date", {}, ["1700000000000", Decimal("1700000000000"), Decimal("sNaN"), 10**400, Decimal("1e400")],
     ["2023-11-15", "2023-11-15"], [2, 3, 4]),
    ("bool_str", {}, [Decimal("1"), "no", Decimal("0.0"), Decimal("2"), Decimal("sNaN")], ["true", "false", "false"],
     [3, 4]),
    ("ms_to_datetime", {}, [1700000000000], ["2023-11-15 06:13:20"], []),
    ("datetime_to_ms", {}, ["2023-11-15T06:13:20", "2023-11-15 06:13:20", "2023-11-15", "soon"],
     [1700000000000, 1700000000000, 1699977600000], [3]),
]


@pytest.mark.parametrize(("name", "args", "values", "good", "bad"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_transform_converts_good_values_and_flags_each_bad_one(name, args, values, good, bad):
    out_good, errors = run(name, values, **args)
    assert sorted(errors) == bad
    assert all(isinstance(msg, str) and msg for msg in errors.values())
    assert len(out_good) == len(good)
    for got, want in zip(out_good, good):
        if want is EMPTY:
            assert pd.isna(got)
        elif isinstance(want, Decimal):
            assert type(got) is Decimal and got == want  # exact, never through a float
            assert str(got) == str(want)
        else:
            assert got == want


def test_every_registered_transform_has_a_case():
    assert {c[0] for c in CASES} == set(REGISTRY)


def test_transforms_return_python_scalars_for_json():
    good, _ = run("int", ["5"])
    assert type(good[0]) is int
    good, _ = run("decimal", ["5.5"])
    assert type(good[0]) is Decimal  # the stage and the K3Cloud hook write it as a JSON number, all digits kept


def test_transform_messages_say_what_is_wrong():
    _, errors = run("positive", ["-2"])
    assert errors[0] == "must be > 0"
    _, errors = run("decimal", ["12abc"])
    assert errors[0] == "is not a number"
    _, errors = run("strip", [["a"]])
    assert errors[0] == "is a list, not text"


def test_transform_on_empty_series_is_a_no_op():
    for name, spec in REGISTRY.items():
        args = {k: 3 for k, (t, d) in spec.params.items()}
        out = spec.func(pd.Series([], dtype=object), CTX, **args)
        assert len(out.values) == 0
        assert out.errors is None or len(out.errors) == 0


@pytest.mark.parametrize(("args", "key"), [({}, None), ({"max": "80"}, "max"), ({"max": 0}, "max"), ({"mx": 8}, "mx")])
def test_transform_arguments_are_checked(args, key):
    with pytest.raises(TransformArgError) as caught:
        REGISTRY["truncate"].check_args(args)
    assert caught.value.key == key


def test_timezone_comes_from_the_context():
    series = pd.Series([1700000000000], dtype=object)
    utc = REGISTRY["ms_to_datetime"].func(series, TransformContext(timezone="UTC"))
    assert utc.values.tolist() == ["2023-11-14 22:13:20"]
