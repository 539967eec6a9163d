"""Tests for tools/profile_train_step.py: multiply-add counts of traced graphs against
hand counts, and one profiled row of a tiny game (no timing assertions)."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import load_tool
from tf_stackelberg.config.sections import Config
from tf_stackelberg.data.registry import DATASETS


@pytest.fixture(scope="module")
def tool():
  return load_tool("profile_train_step")


def _graph(fn, *specs):
  return tf.function(fn).get_concrete_function(*specs).graph


def test_convolution_forward_and_both_gradients_are_counted(tool):
  kernel = tf.Variable(tf.random.normal([5, 5, 3, 8]))
  # 'same' stride 2: [2, 16, 16, 3] -> [2, 8, 8, 8]; 2*8*8*8 outputs x 5*5*3 taps.
  macs = 2 * 8 * 8 * 8 * 5 * 5 * 3

  def step(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = tf.reduce_sum(tf.nn.conv2d(x, kernel, 2, "SAME") ** 2)
    return tape.gradient(y, [x, kernel])
  counted = tool.count_macs(_graph(step, tf.TensorSpec([2, 16, 16, 3])))
  assert counted["by_type"] == {"Conv2D": macs, "Conv2DBackpropInput": macs,
                                "Conv2DBackpropFilter": macs}
  assert counted["total"] == 3 * macs
  assert counted["largest"].type in tool.CONV_OPS


def test_transposed_convolution_counts_its_input_side(tool):
  # A transposed conv [1, 4, 4, 6] -> [1, 8, 8, 2] is Conv2DBackpropInput whose
  # "output side" is its input: 4*4*6 elements x 5*5*2 taps.
  kernel = tf.random.normal([5, 5, 2, 6])
  fn = lambda x: tf.nn.conv2d_transpose(x, kernel, [1, 8, 8, 2], 2, "SAME")
  counted = tool.count_macs(_graph(fn, tf.TensorSpec([1, 4, 4, 6])))
  assert counted["by_type"] == {"Conv2DBackpropInput": 4 * 4 * 6 * 5 * 5 * 2}


def test_matrix_products_and_einsums_are_counted(tool):
  a, w = tf.random.normal([7, 5]), tf.random.normal([3, 5, 4])

  def fn(x):
    return (tf.matmul(x, a, transpose_a=True),          # [5, 7] x [7, 5]
            tf.einsum("bi,kio->kbo", x, w),             # 3 x 7 x 5 x 4
            tf.linalg.matmul(tf.ones([2, 6, 7]), x))    # 2 x [6, 7] x [7, 5]
  counted = tool.count_macs(_graph(fn, tf.TensorSpec([7, 5])))
  assert counted["by_type"]["MatMul"] == 5 * 7 * 5
  assert counted["by_type"]["Einsum"] == 3 * 7 * 5 * 4
  assert counted["by_type"]["BatchMatMulV2"] == 2 * 6 * 7 * 5
  assert counted["largest"] is None


def test_unknown_batch_size_is_refused(tool):
  graph = _graph(lambda x: tf.matmul(x, tf.ones([3, 2])), tf.TensorSpec([None, 3]))
  with pytest.raises(ValueError, match="static shape"):
    tool.count_macs(graph)


def test_profiled_row_of_a_tiny_game(tool):
  config = Config().replace(**{"data.dataset": "ring", "game.batch_size": 16,
                               "model.num_generators": 2}).validate()
  data = DATASETS.get(config.data.dataset)(config.data)
  row = tool.profile(config, data, jit_compile=False, steps=4, rounds=2, warmup=1)
  # g_first on the ring: matrix products only; batch 16, K=2 generators 2-32-2 and
  # a 2-512-256-1 discriminator, so a step holds well over one D forward pass.
  one_d_pass = 16 * (2 * 512 + 512 * 256 + 256)
  assert row["gflop_per_step"] * 1e9 / 2 > 3 * one_d_pass
  assert set(row["gmac_by_op"]) <= set(tool.MATMUL_OPS)
  assert row["step_seconds"] > 0 and np.isfinite(row["gflops"])
  assert row["peak_rss_gib"] > 0.05
  lines = tool.table_lines([row], ref_gflops=None)
  assert lines[0].split()[:3] == ["XLA", "step", "s"] and lines[2].split()[0] == "off"


def test_gradients_nobody_uses_are_not_counted(tool):
  # Only d/dx is returned: the runtime prunes the kernel gradient's
  # Conv2DBackpropFilter that tf.gradients builds alongside, so it is not counted.
  kernel = tf.Variable(tf.random.normal([3, 3, 2, 4]))

  def input_gradient(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = tf.reduce_sum(tf.nn.conv2d(x, kernel, 1, "SAME") ** 2)
    return tape.gradient(y, x)
  counted = tool.count_macs(_graph(input_gradient, tf.TensorSpec([1, 6, 6, 2])))
  macs = 6 * 6 * 4 * 3 * 3 * 2
  assert counted["by_type"] == {"Conv2D": macs, "Conv2DBackpropInput": macs}


def test_convolution_breakdown_counts_repeated_ops_once_per_run(tool):
  kernel = tf.Variable(tf.random.normal([3, 3, 2, 4]))

  def twice(x):  # the same convolution twice, and its two gradients once each
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = tf.reduce_sum(tf.nn.conv2d(x, kernel, 1, "SAME") ** 2)
    extra = tf.nn.conv2d(x * 2.0, kernel, 1, "SAME")
    return tape.gradient(y, [x, kernel]), extra
  ops = tool.count_macs(_graph(twice, tf.TensorSpec([1, 6, 6, 2])))["convolutions"]
  table = tool.convolution_breakdown(ops, iterations=2)
  macs = 6 * 6 * 4 * 3 * 3 * 2 / 1e9
  assert {k: v[:2] for k, v in table.items()} == {
      "Conv2D": (2, pytest.approx(2 * macs)),
      "Conv2DBackpropInput": (1, pytest.approx(macs)),
      "Conv2DBackpropFilter": (1, pytest.approx(macs))}
  assert all(seconds > 0 for _, _, seconds in table.values())
  lines = tool.breakdown_lines(table, step_seconds=1.0)
  assert lines[-1].split()[:2] == ["all", "4"]
