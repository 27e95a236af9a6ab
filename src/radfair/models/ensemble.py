"""Several seeds of one embeddings classifier trained together as one batched module (issue 19, item 5).

Study 1 trains the embeddings head (:class:`radfair.models.MLPHead`, or :class:`radfair.models.LinearProbe`) with five
seeds. :class:`StackedHead` holds the members' parameters stacked along a leading member axis (a linear layer's weight is
``[S, out, in]``), so one forward and backward pass (``torch.baddbmm`` on a GPU; one GEMM per member on CPU, where that is faster) and one
optimiser step serve every member. Each
member's numbers are its own: a stacked linear layer multiplies member ``s``'s rows by member ``s``'s weight only, a
stacked BatchNorm normalises each member's batch with its own statistics, and Adam is elementwise, so a stacked Adam is
``S`` separate Adams. What is shared is only the random stream of dropout (each member's masks differ from the masks a
separate run would draw).

Members are built as ordinary heads (each with ``torch.manual_seed(seed)``, as a separate run builds it) and stacked;
:meth:`StackedHead.member_state_dict` gives a member's weights back in the ordinary head's ``state_dict`` format, so a
member is scored, saved and loaded exactly like a separately trained head. Members that stop training early are removed
(:meth:`StackedHead.keep_members`), with their optimiser state, so that later steps cost only the members still training.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .classifiers import LinearProbe, MLPHead


class StackedLinear(nn.Module):
    """``S`` linear layers: ``y[s] = x[s] @ weight[s].T + bias[s]``.

    Input ``[S, B, in]`` (one batch per member) or ``[B, in]`` (one batch every member reads, e.g. validation); output
    ``[S, B, out]``. Parameters ``weight [S, out, in]`` and ``bias [S, out]`` (``nn.Linear``'s layout per member).
    """

    def __init__(self, layers: Sequence[nn.Linear]):
        super().__init__()
        self.weight = nn.Parameter(torch.stack([layer.weight.detach() for layer in layers]).clone())
        self.bias = nn.Parameter(torch.stack([layer.bias.detach() for layer in layers]).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        members, out, width = self.weight.shape
        if x.dim() == 2:  # shared rows: one GEMM against every member's weights side by side
            y = torch.addmm(self.bias.reshape(-1), x, self.weight.reshape(members * out, width).t())
            return y.view(x.shape[0], members, out).transpose(0, 1)
        if x.is_cuda:  # one batched GEMM: on a GPU, launches (not FLOPs) bound a batch of 48
            return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))
        # on CPU one multithreaded GEMM per member is faster than torch's batched GEMM (2 cores: 16.5 vs 20.6 ms per
        # 5-seed step; docs/benchmarks.md), and is exactly the GEMM of the member's own nn.Linear
        return torch.stack([torch.addmm(b, xs, w.t()) for xs, w, b in zip(x.unbind(0), self.weight.unbind(0), self.bias.unbind(0),
                                                                            strict=True)])


class StackedBatchNorm(nn.Module):
    """``S`` ``BatchNorm1d`` layers over ``[S, B, h]``: member ``s``'s batch is normalised with its own batch statistics
    (training) or running statistics (eval), which it alone updates; PyTorch's batch-norm kernel on ``S·h`` channels."""

    def __init__(self, layers: Sequence[nn.BatchNorm1d]):
        super().__init__()
        first = layers[0]
        self.eps, self.momentum = first.eps, first.momentum
        self.weight = nn.Parameter(torch.stack([layer.weight.detach() for layer in layers]).clone())
        self.bias = nn.Parameter(torch.stack([layer.bias.detach() for layer in layers]).clone())
        self.register_buffer("running_mean", torch.stack([layer.running_mean for layer in layers]).clone())
        self.register_buffer("running_var", torch.stack([layer.running_var for layer in layers]).clone())
        self.register_buffer("num_batches_tracked", first.num_batches_tracked.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        members, batch, width = x.shape
        if self.training:
            self.num_batches_tracked.add_(1)
        flat = x.transpose(0, 1).reshape(batch, members * width)  # channel (s, j) = member s's feature j
        y = F.batch_norm(flat, self.running_mean.view(-1), self.running_var.view(-1), self.weight.view(-1), self.bias.view(-1),
                         self.training, self.momentum, self.eps)
        return y.view(batch, members, width).transpose(0, 1)


def _leaves(member: nn.Module) -> list[tuple[str, nn.Module]]:
    if not isinstance(member, MLPHead | LinearProbe):
        raise TypeError(f"only MLPHead and LinearProbe members can be stacked, not {type(member).__name__}")
    return [(name, module) for name, module in member.named_modules() if not list(module.children())]


def _stack(modules: list[nn.Module]) -> nn.Module:
    first = modules[0]
    if isinstance(first, nn.Linear):
        return StackedLinear(modules)
    if isinstance(first, nn.BatchNorm1d):
        return StackedBatchNorm(modules)
    if isinstance(first, nn.ReLU | nn.Dropout):  # elementwise: one module serves every member
        return type(first)(**({"p": first.p} if isinstance(first, nn.Dropout) else {}))
    raise TypeError(f"cannot stack a {type(first).__name__} layer")


class StackedHead(nn.Module):
    """``S`` heads of one architecture as one module (see the module docstring).

    ``forward(x)``: ``x [S, B, in]`` (member ``s`` reads ``x[s]``) or ``[B, in]`` (every member reads the same rows) ->
    logits ``[S, B, n_labels]``. Raises ``TypeError`` for members other than :class:`MLPHead`/:class:`LinearProbe` and
    ``ValueError`` for members of different shapes.
    """

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        leaves = [_leaves(m) for m in members]
        shapes = [[(n, tuple(p.shape)) for n, p in m.state_dict().items()] for m in members]
        if not members or any(s != shapes[0] for s in shapes):
            raise ValueError("stacked members must be one architecture with the same shapes (and at least one member)")
        self.names = [name for name, _ in leaves[0]]
        self.layers = nn.ModuleList(_stack([member[i][1] for member in leaves]) for i in range(len(self.names)))

    @property
    def n_members(self) -> int:
        return next(layer.weight.shape[0] for layer in self.layers if isinstance(layer, StackedLinear))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def member_state_dict(self, index: int) -> dict[str, torch.Tensor]:
        """Member ``index``'s weights as the ``state_dict`` of one ordinary head (copies)."""
        out = {}
        for name, layer in zip(self.names, self.layers, strict=True):
            for key, value in [*layer.named_parameters(recurse=False), *layer.named_buffers(recurse=False)]:
                out[f"{name}.{key}"] = (value[index] if value.dim() else value).detach().clone()
        return out

    def _stacked_tensors(self):
        for layer in self.layers:
            for key, value in [*layer.named_parameters(recurse=False), *layer.named_buffers(recurse=False)]:
                if value.dim():
                    yield layer, key, value

    @torch.no_grad()
    def keep_members(self, keep: Sequence[int], optimizer: torch.optim.Optimizer | None = None) -> None:
        """Keep members ``keep`` (indices, in order) and drop the others, with their slices of ``optimizer``'s state
        (e.g. Adam's moments); the optimiser keeps the same parameter objects. Gradients are cleared."""
        for layer, key, value in list(self._stacked_tensors()):
            index = torch.as_tensor(list(keep), dtype=torch.long, device=value.device)
            if isinstance(value, nn.Parameter):
                state = optimizer.state.get(value, {}) if optimizer is not None else {}
                for name, moment in state.items():
                    if torch.is_tensor(moment) and moment.shape == value.shape:
                        state[name] = moment.index_select(0, index)
                value.data = value.data.index_select(0, index)
                value.grad = None
            else:
                setattr(layer, key, value.index_select(0, index))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """As ``nn.Module.load_state_dict``; a state with fewer members (saved after :meth:`keep_members`) first shrinks
        this module to that many members (parameter objects kept, so an optimiser built on them stays valid)."""
        for layer, key, value in list(self._stacked_tensors()):
            name = f"layers.{list(self.layers).index(layer)}.{key}"
            incoming = state_dict.get(name)
            if incoming is not None and incoming.shape != value.shape and incoming.shape[1:] == value.shape[1:]:
                with torch.no_grad():
                    if isinstance(value, nn.Parameter):
                        value.data = torch.empty_like(incoming, device=value.device)
                    else:
                        setattr(layer, key, torch.empty_like(incoming, device=value.device))
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
