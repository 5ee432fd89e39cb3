"""Receptive field of a stack of convolutions and poolings: its size, jump (effective stride) and start.

For layer l with kernel k_l, stride s_l, padding p_l and dilation d_l, the effective kernel is
k'_l = d_l (k_l - 1) + 1, and the field seen by one output unit, in input pixels, follows the recurrences

    r_l     = r_{l-1} + (k'_l - 1) j_{l-1}          size of the receptive field   (r_0 = 1)
    j_l     = j_{l-1} s_l                           jump: input pixels between neighbouring units (j_0 = 1)
    start_l = start_{l-1} + ((k'_l - 1)/2 - p_l) j_{l-1}   centre of the first unit's field (start_0 = 0)

The effective padding is P_l = -(start_l - (r_l - 1)/2) = sum_i p_i j_{i-1}: how far the first unit's field
reaches left of pixel 0. Araujo et al. (Distill, 2019) tabulate these for common networks; the built-in
layer lists below reproduce their sizes (AlexNet 195, VGG-16 212, ResNet-50 483) and the 427 of ResNet-50
with the stride in the first block of each stage (torchvision's "v1.5").

A torch module is read by tracing it with torch.fx. Convolutions and poolings update (r, j, start);
so do F.max_pool*/F.avg_pool* calls; element-wise ops, normalisation and activations pass it through; where branches meet (a residual `add`,
a `cat`) the fields are united: the union of the intervals [start - (r-1)/2, start + (r-1)/2], which needs
equal jumps on every branch. Global poolings, flatten and linear layers end the spatial part: the field
reported is the one just before them.

Limits: functional convolutions (F.conv2d) are not read; fields are taken along the first spatial axis
(a non-square kernel uses its first size); TensorFlow's asymmetric "same" padding is not modelled (give
the padding per layer instead); modules whose forward cannot be traced (data-dependent control flow) fall
back to the modules' registration order, which is exact only for a plain chain.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from deepatlas.errors import UserError, unknown
from deepatlas.registry import register_command


@dataclass(frozen=True)
class Layer:
    name: str
    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1

    @property
    def effective_kernel(self) -> int:
        return self.dilation * (self.kernel - 1) + 1


@dataclass(frozen=True)
class Field:
    """The receptive field after a layer, in input pixels."""
    name: str
    size: float  # r
    jump: float  # j, the effective stride
    start: float  # centre of the first unit's field

    @property
    def padding(self) -> float:
        """Effective padding: how far left of pixel 0 the first unit's field begins."""
        return (self.size - 1) / 2 - self.start


def step(f: Field, layer: Layer) -> Field:
    k = layer.effective_kernel
    return Field(layer.name, f.size + (k - 1) * f.jump, f.jump * layer.stride,
                 f.start + ((k - 1) / 2 - layer.padding) * f.jump)


def unite(name: str, fields: list[Field]) -> Field:
    """The field of a unit that sees several branches: the union of their intervals (equal jumps)."""
    jumps = {f.jump for f in fields}
    if len(jumps) > 1:
        raise UserError(f"branches meeting at '{name}' have different strides {sorted(jumps)}; "
                        "their receptive fields cannot be united")
    lo = min(f.start - (f.size - 1) / 2 for f in fields)
    hi = max(f.start + (f.size - 1) / 2 for f in fields)
    return Field(name, hi - lo + 1, fields[0].jump, (lo + hi) / 2)


def receptive_fields(layers: list[Layer]) -> list[Field]:
    """The field after each layer of a chain."""
    f, out = Field("input", 1, 1, 0), []
    for layer in layers:
        for v, what in ((layer.kernel, "kernel"), (layer.stride, "stride"), (layer.dilation, "dilation")):
            if v < 1:
                raise UserError(f"layer '{layer.name}': {what} must be >= 1, got {v}")
        if layer.padding < 0:
            raise UserError(f"layer '{layer.name}': padding must be >= 0, got {layer.padding}")
        f = step(f, layer)
        out.append(f)
    return out


def output_size(n: int, layers: list[Layer]) -> list[int]:
    """Spatial size after each layer for an input of n pixels: floor((n + 2p - k')/s) + 1."""
    sizes = []
    for layer in layers:
        n = (n + 2 * layer.padding - layer.effective_kernel) // layer.stride + 1
        if n < 1:
            raise UserError(f"the input is too small: layer '{layer.name}' would have an output of size {n}")
        sizes.append(n)
    return sizes


# --------------------------------------------------------------------------- built-in layer lists

def _conv(name, k, s=1, p=0, d=1):
    return Layer(name, k, s, p, d)


def alexnet() -> list[Layer]:
    """TF-slim alexnet_v2 up to pool5 (fc6 onward are dense)."""
    return [_conv("conv1", 11, 4, 0), _conv("pool1", 3, 2), _conv("conv2", 5, 1, 2), _conv("pool2", 3, 2),
            _conv("conv3", 3, 1, 1), _conv("conv4", 3, 1, 1), _conv("conv5", 3, 1, 1), _conv("pool5", 3, 2)]


def vgg16() -> list[Layer]:
    out = []
    for stage, n in enumerate((2, 2, 3, 3, 3), start=1):
        out += [_conv(f"conv{stage}_{i}", 3, 1, 1) for i in range(1, n + 1)]
        out.append(_conv(f"pool{stage}", 2, 2))
    return out


def resnet50(stride_in: str = "last") -> list[Layer]:
    """The 3x3 path of ResNet-50 (1x1 convolutions do not widen the field).

    stride_in='last': TF-slim resnet_v1_50, the stride sits in the 3x3 conv of each stage's last unit
    (stages 1-3), max pool without padding; stride_in='first': torchvision (v1.5), in the 3x3 conv of the
    first unit of stages 2-4, max pool padded by 1."""
    if stride_in not in ("first", "last"):
        raise ValueError(stride_in)
    out = [_conv("conv1", 7, 2, 3), _conv("pool1", 3, 2, 0 if stride_in == "last" else 1)]
    for stage, units in enumerate((3, 4, 6, 3), start=1):
        for u in range(1, units + 1):
            if stride_in == "last":
                s = 2 if (u == units and stage < 4) else 1
            else:
                s = 2 if (u == 1 and stage > 1) else 1
            out.append(_conv(f"stage{stage}.unit{u}.conv3x3", 3, s, 1))
    return out


BUILTIN = {
    "alexnet": alexnet,
    "vgg16": vgg16,
    "resnet50": lambda: resnet50("last"),
    "resnet50-v1.5": lambda: resnet50("first"),
}


def parse_spec(text: str) -> list[Layer]:
    """Layers as `[name=]k[,s[,p[,d]]]`, separated by `;` or new lines; `#` starts a comment.

    Example: "conv1=11,4; pool1=3,2; conv2=5,1,2" (stride, padding default to 1, 0; dilation to 1)."""
    layers = []
    items = [it.split("#")[0].strip() for line in text.splitlines() for it in line.split(";")]
    for i, item in enumerate(it for it in items if it):
        name, _, nums = item.rpartition("=")
        name = name.strip() or f"layer{i + 1}"
        try:
            vals = [int(v) for v in nums.replace(" ", ",").split(",") if v]
        except ValueError:
            raise UserError(f"layer '{item}': expected [name=]kernel[,stride[,padding[,dilation]]] with integers") from None
        if not 1 <= len(vals) <= 4:
            raise UserError(f"layer '{item}': expected 1 to 4 integers (kernel, stride, padding, dilation), got {len(vals)}")
        layers.append(Layer(name, *vals))
    if not layers:
        raise UserError("the layer spec is empty; give e.g. 'conv1=11,4; pool1=3,2'")
    return layers


def layers_from(arg: str) -> list[Layer]:
    """A built-in network name, a spec file, or a spec string."""
    if arg in BUILTIN:
        return BUILTIN[arg]()
    path = Path(arg)
    if path.is_file():
        return parse_spec(path.read_text())
    if arg[:1].isdigit() or any(c in arg for c in "=,;\n"):
        return parse_spec(arg)
    raise unknown("network", arg, BUILTIN)


# --------------------------------------------------------------------------- torch modules

def _first(v) -> int:
    return int(v[0] if isinstance(v, (tuple, list)) else v)


def layer_of(name: str, m) -> Layer | None:
    """The Layer a conv / pool module applies, or None if it does not act spatially."""
    from torch import nn

    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        if isinstance(m.padding, str):
            pad = 0 if m.padding == "valid" else (m.dilation[0] * (m.kernel_size[0] - 1)) // 2
        else:
            pad = _first(m.padding)
        return Layer(name, _first(m.kernel_size), _first(m.stride), pad, _first(m.dilation))
    if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
        return Layer(name, _first(m.kernel_size), _first(m.stride or m.kernel_size), _first(m.padding), _first(m.dilation))
    if isinstance(m, (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
        return Layer(name, _first(m.kernel_size), _first(m.stride or m.kernel_size), _first(m.padding))
    return None


def _functional_pools() -> dict:
    import torch.nn.functional as F

    names = ("kernel_size", "stride", "padding", "dilation")
    return {F.max_pool1d: names, F.max_pool2d: names, F.max_pool3d: names,
            F.avg_pool1d: names[:3], F.avg_pool2d: names[:3], F.avg_pool3d: names[:3]}


def functional_layer(node) -> Layer | None:
    """The Layer of a traced F.max_pool* / F.avg_pool* call (functional convolutions are not read)."""
    try:
        names = _functional_pools().get(node.target)
    except TypeError:  # unhashable target
        return None
    if names is None:
        return None
    opts = dict(zip(names, node.args[1:]))
    opts.update({k: v for k, v in node.kwargs.items() if k in names})
    k = _first(opts["kernel_size"])
    return Layer(node.name, k, _first(opts.get("stride") or k), _first(opts.get("padding", 0)),
                 _first(opts.get("dilation", 1)))


def _is_global(m) -> bool:
    from torch import nn

    return isinstance(m, (nn.Linear, nn.Flatten, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                          nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d))


def module_fields(module) -> list[tuple[Layer, Field]]:
    """(layer, field after it) for every conv / pool of `module`, in execution order.

    Traced with torch.fx so that residual branches are united rather than chained; if tracing fails, the
    modules are taken in registration order (exact only for a plain chain)."""
    return _trace(module)[0]


def _trace(module) -> tuple[list[tuple[Layer, Field]], Field | None]:
    """-> (rows of module_fields, the field of the module's output: of the last spatial tensor it returns,
    or of the one that entered the global pooling / flatten / linear layers ending it)."""
    import operator

    import torch
    import torch.fx

    try:
        graph = torch.fx.symbolic_trace(module).graph
    except Exception:  # noqa: BLE001 - any tracing failure means "not traceable"
        rows = _chain_fields(module)
        return rows, (rows[-1][1] if rows else None)
    mods = dict(module.named_modules())
    fields: dict[str, Field] = {}  # spatial tensors
    ended: dict[str, Field] = {}  # tensors past the spatial part: the field that entered it
    rows: list[tuple[Layer, Field]] = []
    merging = {operator.add, operator.iadd, operator.mul, torch.add, torch.cat, torch.mul, torch.stack}
    out: Field | None = None
    for node in graph.nodes:
        ins = [fields[a.name] for a in node.all_input_nodes if a.name in fields]
        if node.op == "output":
            found = [fields.get(a.name) or ended.get(a.name) for a in node.all_input_nodes]
            found = [f for f in found if f is not None]
            out = found[-1] if found else None
            continue
        if not ins:
            past = [ended[a.name] for a in node.all_input_nodes if a.name in ended]
            if past:
                ended[node.name] = past[-1]
        if node.op == "placeholder":
            fields[node.name] = Field("input", 1, 1, 0)
        elif node.op == "call_module" and node.target in mods:
            m = mods[node.target]
            layer = layer_of(node.target, m)
            if layer is not None and ins:
                fields[node.name] = step(ins[0], layer)
                rows.append((layer, fields[node.name]))
            elif ins:
                if _is_global(m):
                    ended[node.name] = ins[0]
                else:
                    fields[node.name] = ins[0]
        elif node.op == "call_function" and ins and (layer := functional_layer(node)) is not None:
            fields[node.name] = step(ins[0], layer)
            rows.append((layer, fields[node.name]))
        elif node.op in ("call_function", "call_method") and ins:
            if (node.op == "call_method" and node.target in ("flatten", "view", "reshape", "mean", "sum", "amax")) \
                    or (node.op == "call_function" and node.target in (torch.flatten,)):
                ended[node.name] = ins[0]  # leaves the spatial domain
                continue
            fields[node.name] = unite(node.name, ins) if (node.target in merging and len(ins) > 1) else ins[0]
    return rows, out


def _chain_fields(module) -> list[tuple[Layer, Field]]:
    layers = [layer for name, m in module.named_modules() if (layer := layer_of(name, m)) is not None]
    return list(zip(layers, receptive_fields(layers)))


def module_field(module) -> Field:
    """The receptive field of the module's output: of the last spatial tensor `forward` returns, after every
    branch merged into it (the order of statements in `forward` does not matter), or, when the module ends
    in a global pooling / flatten / dense layer, of the tensor that entered it."""
    rows, out = _trace(module)
    if not rows:
        raise UserError("the module has no convolution or pooling layer")
    return out if out is not None else rows[-1][1]


# --------------------------------------------------------------------------- CLI

def table(layers: list[Layer], fields: list[Field], input_size: int = 0) -> str:
    sizes = output_size(input_size, layers) if input_size else [None] * len(layers)
    head = f"{'layer':<24} {'k':>3} {'s':>3} {'p':>3} {'d':>3} {'size r':>8} {'jump j':>7} {'start':>8} {'pad P':>7}"
    head += f" {'out':>5}" if input_size else ""
    lines = [head, "-" * len(head)]
    for layer, f, n in zip(layers, fields, sizes):
        line = (f"{layer.name:<24} {layer.kernel:>3} {layer.stride:>3} {layer.padding:>3} {layer.dilation:>3} "
                f"{_num(f.size):>8} {_num(f.jump):>7} {_num(f.start):>8} {_num(f.padding):>7}")
        lines.append(line + (f" {n:>5}" if n is not None else ""))
    return "\n".join(lines)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


@register_command("rf", "vision", "receptive field per layer (size, jump, start, padding): deepatlas rf alexnet | vgg16 | "
                                  "resnet50 | resnet50-v1.5 | 'k,s,p,d; ...' | FILE")
def configure(parser):
    parser.add_argument("net", help=f"built-in network ({', '.join(BUILTIN)}), a spec file, or a spec string "
                                    "'[name=]kernel[,stride[,padding[,dilation]]]; ...'")
    parser.add_argument("--input", type=int, default=0, help="input size in pixels: also print each layer's output size")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def run(args) -> int:
        layers = layers_from(args.net)
        fields = receptive_fields(layers)
        if args.input < 0:
            raise UserError(f"--input must be >= 0, got {args.input}")
        if args.json:
            rows = [{**asdict(layer), "size": f.size, "jump": f.jump, "start": f.start, "padding_eff": f.padding}
                    for layer, f in zip(layers, fields)]
            print(json.dumps(rows, indent=1))
        else:
            print(table(layers, fields, args.input))
            last = fields[-1]
            print(f"\nreceptive field {_num(last.size)} px, effective stride {_num(last.jump)}, "
                  f"effective padding {_num(last.padding)}")
        return 0

    return run

