"""Tests for tf_stackelberg.common: atomic writes, strict JSON and its conversion."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf

from tf_stackelberg.common import files
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.common.jsonable import to_jsonable


class _Boom(Exception):
  pass


def _leftovers(directory, name):
  return sorted(p.name for p in directory.iterdir() if p.name.startswith(name + ".tmp"))


# ------------------------------------------------------------------ atomic_write
def test_atomic_write_replaces_the_destination_on_success(tmp_path):
  path = tmp_path / "out.txt"
  path.write_text("old")
  with files.atomic_write(str(path)) as f:
    f.write("new")
    assert path.read_text() == "old"  # nothing visible before the body ends
  assert path.read_text() == "new"
  assert _leftovers(tmp_path, "out.txt") == []


def test_atomic_write_leaves_the_destination_untouched_when_the_body_raises(tmp_path):
  path = tmp_path / "out.txt"
  path.write_text("precious")
  with pytest.raises(_Boom):
    with files.atomic_write(str(path)) as f:
      f.write("half-written")
      raise _Boom()
  assert path.read_text() == "precious"
  assert _leftovers(tmp_path, "out.txt") == []
  assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_write_creates_nothing_when_the_body_raises(tmp_path):
  path = tmp_path / "new" / "out.bin"
  with pytest.raises(_Boom):
    with files.atomic_write(str(path), "wb") as f:
      f.write(b"\x00\x01")
      raise _Boom()
  assert not path.exists()
  assert _leftovers(path.parent, "out.bin") == []


def test_atomic_write_makes_parent_directories(tmp_path):
  path = tmp_path / "a" / "b" / "c.bin"
  files.write_bytes(str(path), b"\x00\xff")
  assert path.read_bytes() == b"\x00\xff"


def test_write_npz_round_trips(tmp_path):
  path = tmp_path / "arrays.npz"
  files.write_npz(str(path), x=np.arange(6, dtype=np.float32).reshape(3, 2),
                  k=np.array([0, 2, 1], np.int32))
  with np.load(path) as data:
    np.testing.assert_array_equal(data["x"], np.arange(6).reshape(3, 2))
    assert data["x"].dtype == np.float32
    np.testing.assert_array_equal(data["k"], [0, 2, 1])


# ------------------------------------------------------------------ JSON
def test_write_json_is_strict_json(tmp_path):
  path = tmp_path / "m.json"
  value = {"nan": float("nan"), "inf": np.float32(np.inf), "neg_inf": -math.inf,
           "f32": np.float32(0.5), "i64": np.int64(7), "flag": np.bool_(True),
           "array": np.array([[1.0, np.nan], [2.0, 3.0]]), "tuple": (1, 2),
           3: "int key", "tensor": tf.constant([1, 2], tf.int32)}
  files.write_json(str(path), value)
  text = path.read_text()
  assert "NaN" not in text and "Infinity" not in text
  assert text.endswith("\n")
  # The standard parser, refusing the non-standard constants, reads it back.
  def refuse(name):
    raise AssertionError(f"non-standard constant {name}")
  loaded = json.loads(text, parse_constant=refuse)
  assert loaded == {"nan": None, "inf": None, "neg_inf": None, "f32": 0.5, "i64": 7,
                    "flag": True, "array": [[1.0, None], [2.0, 3.0]],
                    "tuple": [1, 2], "3": "int key", "tensor": [1, 2]}
  assert type(loaded["i64"]) is int and type(loaded["flag"]) is bool
  assert files.read_json(str(path)) == loaded
  assert _leftovers(tmp_path, "m.json") == []


def test_write_json_keeps_the_old_file_when_a_value_cannot_be_written(tmp_path):
  path = tmp_path / "m.json"
  files.write_json(str(path), {"a": 1})
  with pytest.raises(TypeError):
    files.write_json(str(path), {"a": object()})
  assert files.read_json(str(path)) == {"a": 1}
  assert _leftovers(tmp_path, "m.json") == []


def test_read_json_error_names_the_file(tmp_path):
  path = tmp_path / "broken.json"
  path.write_text('{"a": 1,')
  with pytest.raises(ValueError, match="broken.json is not valid JSON") as error:
    files.read_json(str(path))
  assert str(path) in str(error.value)
  assert not isinstance(error.value, ConfigError)


# ------------------------------------------------------------------ to_jsonable
def test_to_jsonable_converts_numbers_containers_and_tensors():
  out = to_jsonable({"a": (np.int32(1), np.float64(2.5)), "b": [np.bool_(False)],
                     "c": np.zeros([2, 2], np.int64), "d": tf.constant(1.5),
                     "e": {1: {"f": np.float32(np.nan)}}, "g": "text", "h": None})
  assert out == {"a": [1, 2.5], "b": [False], "c": [[0, 0], [0, 0]], "d": 1.5,
                 "e": {"1": {"f": None}}, "g": "text", "h": None}
  assert type(out["a"][0]) is int and type(out["a"][1]) is float
  assert type(out["b"][0]) is bool and type(out["c"][0][0]) is int
  json.dumps(out, allow_nan=False)


@pytest.mark.parametrize("value,expected", [
    (float("nan"), None), (float("inf"), None), (-np.inf, None),
    (np.float16(1.5), 1.5), (np.uint8(255), 255), (True, True), (0, 0),
    (np.array(3.0), 3.0), ((), []), ({}, {}),
])
def test_to_jsonable_scalars(value, expected):
  got = to_jsonable(value)
  assert got == expected and type(got) is type(expected)
