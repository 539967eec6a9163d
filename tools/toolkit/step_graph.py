"""What one traced training step executes: its ops, their multiply-adds from static
shapes, and the activations back-propagation keeps alive.

Only the ops a run of the graph executes count: those its outputs and control outputs
(the variable updates) depend on, in the graph and in the functions it calls.
"""

import numpy as np
import tensorflow as tf

CONV_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter")
MATMUL_OPS = ("MatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum")
# Forward ops whose outputs are not layer activations (for counting what a step keeps).
_NOT_ACTIVATIONS = ("Const", "ReadVariableOp", "Placeholder", "VarHandleOp", "AddN",
                    "Identity")


def dims(tensor):
  """The static shape of `tensor` as a list of ints (ValueError if it has none)."""
  shape = tensor.shape
  if shape.rank is None or not shape.is_fully_defined():
    raise ValueError(f"{tensor.name} has no static shape ({shape}); profile with a "
                     "fixed batch size")
  return [int(d) for d in shape]


def conv_macs(op):
  """Multiply-adds of a 2-D convolution op, forward or either gradient: the
  elements of the convolution's output side times kernel height x width x input
  channels (the same count for all three ops of one layer)."""
  if op.type == "Conv2D":
    out, kernel = dims(op.outputs[0]), dims(op.inputs[1])
  elif op.type == "Conv2DBackpropInput":
    out, kernel = dims(op.inputs[2]), dims(op.inputs[1])
  else:  # Conv2DBackpropFilter: the kernel is its output
    out, kernel = dims(op.inputs[2]), dims(op.outputs[0])
  kh, kw, cin, _ = kernel
  return int(np.prod(out)) * kh * kw * cin


def _matmul_macs(op):
  """Multiply-adds of a (batched) matrix product or an einsum."""
  if op.type == "Einsum":
    equation = op.get_attr("equation").decode()
    lhs = equation.split("->")[0].split(",")
    sizes = {}
    for term, tensor in zip(lhs, op.inputs):
      for letter, size in zip(term, dims(tensor)):
        sizes[letter] = size
    return int(np.prod(list(sizes.values())))
  a, out = dims(op.inputs[0]), dims(op.outputs[0])
  transposed = op.get_attr("transpose_a" if op.type == "MatMul" else "adj_x")
  inner = a[-2] if transposed else a[-1]
  return int(np.prod(out)) * inner


def _subgraphs(graph):
  """`graph` and the graphs of the functions it calls (while-loop bodies, calls)."""
  seen, pending = [], [graph]
  while pending:
    g = pending.pop()
    if any(g is s for s in seen):
      continue
    seen.append(g)
    for function in getattr(g, "_functions", {}).values():
      inner = getattr(function, "graph", None)
      if inner is not None:
        pending.append(inner)
  return seen


def _executed_ops(graph):
  """The ops of `graph` that running it executes: those its outputs and control
  outputs (the variable updates) depend on. Gradient functions also build ops whose
  results nobody uses (the discriminator's kernel gradients in the generator's
  update); the runtime prunes those, so they are not counted. Graphs of nested
  functions are taken whole."""
  roots = [t.op for t in getattr(graph, "outputs", [])]
  roots += list(getattr(graph, "control_outputs", []))
  if not roots:
    return graph.get_operations()
  seen, pending = set(), list(roots)
  while pending:
    op = pending.pop()
    if op.name in seen:
      continue
    seen.add(op.name)
    pending.extend(t.op for t in op.inputs)
    pending.extend(op.control_inputs)
  return [op for op in graph.get_operations() if op.name in seen]


def step_ops(graph):
  """Every op a run of a traced graph executes, those of the functions it calls
  included."""
  return [op for g in _subgraphs(graph) for op in _executed_ops(g)]


def count_macs(graph):
  """{'total': multiply-adds, 'by_type': {op type: multiply-adds}, 'largest': the
  convolution op with the most multiply-adds (or None), 'convolutions': every
  convolution op} of the ops a run of a traced graph executes."""
  by_type, largest, convolutions = {}, (0, None), []
  for op in step_ops(graph):
    if op.type in CONV_OPS:
      macs = conv_macs(op)
      convolutions.append(op)
      largest = max(largest, (macs, op), key=lambda pair: pair[0])
    elif op.type in MATMUL_OPS:
      macs = _matmul_macs(op)
    else:
      continue
    by_type[op.type] = by_type.get(op.type, 0) + macs
  return dict(total=sum(by_type.values()), by_type=by_type, largest=largest[1],
              convolutions=convolutions)


def train_step_graph(gan, batch):
  """The graph of one `train_step` on a batch shaped like `batch` (not run)."""
  spec = tf.TensorSpec(batch.shape, batch.dtype)
  return tf.function(gan.train_step).get_concrete_function(spec).graph


def _is_gradient(op):
  return "gradient_tape" in op.name


def saved_activations(ops):
  """Elements of the forward tensors each update's gradients read, by update.

  Every variable-update op group (by its top-level name scope, e.g. `adam` and
  `adam_1`: one per player) is followed back through the gradient ops it depends
  on; the forward tensors those gradient ops read (not weights or constants) are
  what back-propagation keeps alive for that update. Returns {scope: elements}.
  """
  by_name = {op.name: op for op in ops}
  updates = {}
  for op in ops:
    if op.type.startswith(("Assign", "ResourceApply")) and "/" in op.name:
      updates.setdefault(op.name.split("/")[0], []).append(op)
  out = {}
  for scope, roots in updates.items():
    seen, pending, saved = set(), list(roots), {}
    while pending:
      op = pending.pop()
      if op.name in seen or op.name not in by_name:
        continue
      seen.add(op.name)
      for tensor in op.inputs:
        producer = tensor.op
        if (_is_gradient(op) and not _is_gradient(producer)
            and producer.type not in _NOT_ACTIVATIONS and tensor.dtype.is_floating
            and tensor.shape.is_fully_defined() and tensor.shape.rank):
          saved[tensor.name] = tensor.shape.num_elements()
        pending.append(producer)
    if saved:
      out[scope] = sum(saved.values())
  return out
