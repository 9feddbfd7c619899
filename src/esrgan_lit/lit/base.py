"""What the PSNR and the GAN stage share: the generator, val/test/predict, the step guard.

Both stages use manual optimisation so that one training iteration is one counted step
(``trainer.max_steps`` = generator iterations, Lightning issue #17958), gradients are clipped
after any fp16 unscaling, DDP gradients are averaged per network (never one wrapper around G and
D, Lightning issues #20328 / #20866) and a non-finite step is skipped rather than applied.
The fast-path switches (channels_last, fused Adam, sync-free logging and guard, torch.compile)
live in :mod:`esrgan_lit.lit.fastpath`; on CPU they default to off, so CPU runs are unchanged.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from esrgan_lit.lit.compat import uncounted_step
from esrgan_lit.lit.fastpath import (
    FastPath,
    ScalarReadback,
    compile_modules,
    is_fused,
    to_channels_last,
)
from esrgan_lit.lit.pretrained_hint import describe_mismatch
from esrgan_lit.weights import load_generator, load_state_dict
from esrgan_lit.weights.formats import translates_keys
from esrgan_lit.weights.wandb_ref import resolve_wandb_ref


@dataclass
class StepOutcome:
    """What the step guard saw in one optimiser step (``SRModule.step_optimizer``)."""

    name: str  # "g" or "d": the log name of the network
    grad_norm: Tensor | None = None  # None: no parameter had a gradient
    skipped: bool = False  # non-finite: the gradients were dropped, the update skipped
    found_inf: Tensor | None = None  # sync-free guard: the on-device flag the fused optimiser read


class NonFiniteStepsError(FloatingPointError):
    """Raised after too many iterations in a row had non-finite losses or gradients."""


def load_pretrained_into(generator: nn.Module, path: str | os.PathLike[str]) -> None:
    """Copy weights from any checkpoint ``esrgan_lit.weights`` reads into ``generator`` (strict)."""
    path = os.fspath(resolve_wandb_ref(path) or path)  # wandb:ENTITY/PROJECT/NAME:ALIAS
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model.pretrained_generator: no such file {path!r}")
    if translates_keys(generator):  # foreign layouts (original ESRGAN) are renamed first
        state = load_generator(path, strict=True).state_dict()
    else:
        state = load_state_dict(path)
    try:
        generator.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(
            f"model.pretrained_generator={path!r} does not fit the configured generator "
            f"({generator.__class__.__name__}): {describe_mismatch(generator, path, err)}"
        ) from None


def _dist_world() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def average_gradients(params: list[nn.Parameter]) -> None:
    """All-reduce (mean) the gradients of ``params`` across processes, one flat bucket."""
    world = _dist_world()
    if world == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat.div_(world)
    for g, synced in zip(grads, _unflatten_dense_tensors(flat, grads)):
        g.copy_(synced)


class SRModule(L.LightningModule):
    """Base LightningModule: holds ``generator``; subclasses write ``training_step``."""

    def __init__(
        self,
        generator: nn.Module,
        *,
        pretrained_generator: str | None = None,
        grad_clip: float | None = None,
        max_nonfinite_steps: int = 25,
        channels_last: bool | None = None,
        sync_free: bool | None = None,
        compile: bool = False,
        compile_mode: str | None = None,
        compile_backend: str = "inductor",
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.generator = generator
        if pretrained_generator:
            load_pretrained_into(self.generator, pretrained_generator)
        self.generator_pretrained = bool(pretrained_generator)  # the EMA skips its warm-up
        self.grad_clip = grad_clip
        self.max_nonfinite_steps = max_nonfinite_steps
        self.nonfinite_in_a_row = 0
        self.nonfinite_total = 0
        self._guard_outcome: StepOutcome | None = None  # the step_optimizer call in progress
        self._fast_request = {
            "channels_last": channels_last,
            "sync_free": sync_free,
            "compile": compile,
            "compile_mode": compile_mode,
            "compile_backend": compile_backend,
        }
        self.fast = FastPath()  # resolved for the run's device in setup()
        self._readback = ScalarReadback()
        self._log_buffer: dict[str, Any] = {}
        self._log_meta: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        self._nf_dev: Tensor | None = None  # [in a row, total] on the device (sync-free guard)

    # ----------------------------------------------------------------- inference
    def forward(self, lq: Tensor) -> Tensor:
        return self.generator(lq)

    def super_resolve(self, lq: Tensor) -> Tensor:
        """SR image in [0, 1]; grey (N,1,h,w) inputs run as RGB and come back grey."""
        grey = lq.shape[1] == 1
        x = lq.expand(-1, 3, -1, -1) if grey else lq
        sr = self.generator(x).float().clamp_(0, 1)
        return sr.mean(dim=1, keepdim=True) if grey else sr

    def _eval_step(self, batch: dict[str, Any]) -> dict[str, Any]:
        sr = self.super_resolve(batch["lq"])
        return {"sr": sr, "gt": batch["gt"], "lq": batch["lq"], "name": batch.get("name")}

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0):
        return self._eval_step(batch)

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0):
        return self._eval_step(batch)

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0):
        return self.super_resolve(batch["lq"] if isinstance(batch, dict) else batch)

    # ------------------------------------------------------------ fast path
    def setup(self, stage: str) -> None:
        if stage != "fit" or self._trainer is None:
            return
        self.fast = FastPath.resolve(self.trainer.strategy.root_device, **self._fast_request)
        if self.fast.channels_last:
            self.to(memory_format=torch.channels_last)

    def train_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The training batch as the networks want it (channels_last on the fast path).

        Not ``on_after_batch_transfer``: the DataModule owns that hook (it synthesises the
        degraded LR there), and Lightning calls only one of the two when both define it.
        """
        return to_channels_last(batch) if self.fast.channels_last else batch

    def log(self, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
        """Sync-free mode: per-step ``train/*`` scalars are read back asynchronously, then logged."""
        if self.fast.sync_free and self.training and name.startswith("train/"):
            self._log_buffer[name] = value
            self._log_meta[name] = (args, kwargs)
            return
        super().log(name, value, *args, **kwargs)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if not self.fast.sync_free:
            return
        values = dict(self._log_buffer)
        self._log_buffer.clear()
        if self._nf_dev is not None:
            values["__nf_run"], values["__nf_total"] = self._nf_dev[0], self._nf_dev[1]
        self._readback.push(self.global_step, values)
        self._drain(wait=False, log=True)

    def on_train_end(self) -> None:
        # Lightning allows no self.log here: the last (<= 4) steps' scalars update the guard's
        # counters only; the logger already has every earlier step's values.
        self._drain(wait=True, log=False)

    def _drain(self, *, wait: bool, log: bool) -> None:
        """Log the read-back scalars and apply the non-finite guard's counters."""
        for _, values in self._readback.ready(wait=wait):
            run, total = values.pop("__nf_run", None), values.pop("__nf_total", None)
            if log:
                for name, v in values.items():
                    args, kwargs = self._log_meta[name]
                    super().log(name, torch.tensor(v), *args, **kwargs)
            if run is None or total is None:
                continue
            if int(total) > self.nonfinite_total and log:
                super().log("train/skipped_steps", torch.tensor(total), on_step=True)
            self.nonfinite_in_a_row, self.nonfinite_total = int(run), int(total)
            self._raise_if_too_many()

    def on_fit_start(self) -> None:
        if self.fast.compile:
            nets = [self.generator, getattr(self, "discriminator", None)]
            nets.append(getattr(self, "perceptual_loss", None))
            compile_modules(nets, self.fast.compile_mode, self.fast.compile_backend)
        self._check_not_one_ddp_wrapper()

    # ------------------------------------------------------------ optimisation
    def _check_not_one_ddp_wrapper(self) -> None:
        from torch.nn.parallel import DistributedDataParallel

        if isinstance(self.trainer.strategy.model, DistributedDataParallel):
            raise RuntimeError(
                "the LightningModule is wrapped in one DistributedDataParallel; G and D must be "
                "synchronised separately. Use trainer=ddp or trainer=ddp_cpu (strategy "
                "esrgan_lit.lit.ddp.GANDDPStrategy) instead of strategy='ddp'."
            )

    def step_optimizer(self, optimizer: Any, name: str, *, counted: bool = True) -> StepOutcome:
        """``optimizer.step()`` through the step guard; returns what the guard saw.

        Lightning runs :meth:`on_before_optimizer_step` inside ``step()``, after backward and
        after fp16 unscaling; that is where the guard (DDP mean, clip, non-finite check) must
        run, and it reports back to this call. ``counted=False``: the step does not advance
        ``trainer.global_step`` (one GAN iteration is one step, #17958).
        """
        self._guard_outcome = StepOutcome(name)
        try:
            if counted:
                optimizer.step()
            else:
                with uncounted_step(optimizer):
                    optimizer.step()
            return self._guard_outcome
        finally:
            self._guard_outcome = None

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        """The step guard: sync DDP grads, clip, guard against NaN (see :meth:`step_optimizer`)."""
        outcome = self._guard_outcome
        if outcome is None:
            raise RuntimeError(
                "an optimiser stepped outside SRModule.step_optimizer: call "
                "self.step_optimizer(opt, name) so the step guard runs"
            )
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        average_gradients(params)
        if not params:
            return
        if self.grad_clip:
            norm = nn.utils.clip_grad_norm_(params, self.grad_clip, error_if_nonfinite=False)
        else:  # the norm only: no multiplication of every gradient by 1
            norm = nn.utils.get_total_norm([p.grad for p in params])
        outcome.grad_norm = norm.detach()
        if self.fast.sync_free and is_fused(optimizer) and not self._fp16_scaler():
            # on the device: the fused optimiser skips its update where found_inf is 1
            found = (~torch.isfinite(norm)).to(torch.float32).reshape(())
            optimizer.found_inf = outcome.found_inf = found
            return
        if not torch.isfinite(norm):
            for p in params:  # Adam skips parameters without a gradient: the step is skipped
                p.grad = None
            outcome.skipped = True

    def finish_iteration(self, schedulers: list[Any], steps: list[StepOutcome]) -> None:
        """Step every scheduler once, log the steps' grad norms, apply the non-finite guard."""
        for sch in schedulers:
            sch.step()
        for step in steps:
            if step.grad_norm is not None:
                self.log(
                    f"train/grad_norm_{step.name}", step.grad_norm, on_step=True, on_epoch=False
                )
        flags = [s.found_inf for s in steps if s.found_inf is not None]
        skipped = any(s.skipped for s in steps)
        if flags:  # sync-free guard: counters stay on the device, read back later
            if skipped:  # a non-fused optimiser in the same iteration took the sync guard
                flags.append(torch.ones_like(flags[0]))
            skipped_dev = torch.stack(flags).amax()
            if self._nf_dev is None:
                start = [float(self.nonfinite_in_a_row), float(self.nonfinite_total)]
                self._nf_dev = torch.tensor(start, device=skipped_dev.device)
            run, total = self._nf_dev.unbind()
            self._nf_dev = torch.stack([(run + 1) * skipped_dev, total + skipped_dev])
            return
        if skipped:
            self.nonfinite_in_a_row += 1
            self.nonfinite_total += 1
            self.log("train/skipped_steps", float(self.nonfinite_total), on_step=True)
            self._raise_if_too_many()
        else:
            self.nonfinite_in_a_row = 0

    def _raise_if_too_many(self) -> None:
        if self.nonfinite_in_a_row >= self.max_nonfinite_steps:
            raise NonFiniteStepsError(
                f"{self.nonfinite_in_a_row} iterations in a row had non-finite losses or "
                f"gradients (up to step {self.global_step}); training stopped. Lower the "
                "learning rate, set model.grad_clip, or train in precision=32-true."
            )

    def _fp16_scaler(self) -> bool:
        """fp16 mixed precision: GradScaler owns ``found_inf``; use the synchronous guard."""
        return self._trainer is not None and str(self.trainer.precision).startswith("16")

    def log_lr(self, optimizer: Any, name: str) -> None:
        self.log(f"train/lr_{name}", optimizer.param_groups[0]["lr"], on_step=True, on_epoch=False)

    # ------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        np_state = np.random.get_state()
        checkpoint["rng_states"] = {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "numpy": (np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        if self._nf_dev is not None:  # exact counters (one sync per checkpoint)
            self.nonfinite_in_a_row, self.nonfinite_total = (int(v) for v in self._nf_dev.tolist())
        checkpoint["nonfinite"] = [self.nonfinite_in_a_row, self.nonfinite_total]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("state_dict", {})
        for key in [k for k in state if k.startswith("generator_ema.")]:
            del state[key]  # a copy for weight loaders; the EMA callback keeps its own state
        rng = checkpoint.get("rng_states")
        if rng:
            torch.set_rng_state(rng["torch"])
            random.setstate(_as_tuple(rng["python"]))
            kind, keys, *rest = rng["numpy"]
            np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
            if rng["cuda"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])
        self.nonfinite_in_a_row, self.nonfinite_total = checkpoint.get("nonfinite", [0, 0])
        self._nf_dev = None


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, list | tuple) else x
