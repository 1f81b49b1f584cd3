"""TensorFlow-side optimizers: tf_keras (new), tf_keras legacy, TF1 ``RMSPropOptimizer`` (eager and in a
``tf.function``) and the fused kernels ``tf.raw_ops.ResourceApply(Centered)RMSProp``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from harness.adapters.base import Adapter, BenchPoint, Snapshot, Stepper, Task, as_float64
from harness.base.host import cpu_name, missing, package_version


class _TensorFlow(Adapter):
    framework = "tensorflow"
    env: ClassVar[dict[str, str]] = {"TF_CPP_MIN_LOG_LEVEL": "2"}
    dtypes = ("float16", "bfloat16", "float32", "float64")

    def available(self) -> str | None:
        return missing("tensorflow", "tf_keras")

    def devices(self) -> list[str]:
        import tensorflow as tf

        return ["cpu", *(["gpu"] if tf.config.list_physical_devices("GPU") else [])]

    def device_name(self, device: str) -> str:
        return "tensorflow GPU:0" if device == "gpu" else cpu_name()

    def versions(self) -> dict[str, str | None]:
        return {"tensorflow": package_version("tensorflow"), "tf_keras": package_version("tf_keras")}

    def optimizer(self, kwargs: dict, scheduled: bool):
        raise NotImplementedError

    def set_lr(self, opt, lr: float) -> None:
        """Set the learning rate of the next step (a schedule)."""
        opt.learning_rate = lr

    def step(self, opt, grads: list, variables: list) -> None:
        """One optimizer step."""
        opt.apply_gradients(zip(grads, variables, strict=True))

    def slots(self, opt, variables) -> dict[str, list]:
        """State kind -> one slot variable per parameter (TF1/legacy slot names)."""
        names = {"rms": "nu", "mg": "mu", "momentum": "trace"}
        out = {}
        for slot, kind in names.items():
            if slot in opt.get_slot_names():
                out[kind] = [opt.get_slot(v, slot) for v in variables]
        return out

    #: benchmark variant -> (what it is, wrap apply_gradients in a tf.function, optimizer kwargs)
    BENCH: ClassVar[dict[str, tuple[str, bool, dict]]] = {
        "eager": ("apply_gradients op by op (eager)", False, {}),
        "tf.function": ("apply_gradients in a tf.function (graph)", True, {}),
    }

    def bench_variants(self, device: str) -> dict[str, str]:
        return {v: what for v, (what, _, _) in self.BENCH.items()}

    def bench(self, point: BenchPoint) -> Stepper:
        import tensorflow as tf

        _, traced, extra = self.BENCH[point.variant]
        dtype = tf.as_dtype(point.dtype)
        params0, grads0 = point.arrays()
        with tf.device("/GPU:0" if point.device == "gpu" else "/CPU:0"):
            variables = [tf.Variable(params0.pop(n), dtype=dtype, name=n) for n in list(params0)]
            grads = [tf.constant(grads0.pop(n), dtype=dtype) for n in list(grads0)]
            opt = self.optimizer({**point.kwargs, **extra}, False)
            self.step(opt, grads, variables)  # creates the slots outside any tf.function
            apply = lambda: self.step(opt, grads, variables)  # noqa: E731
            if traced:
                apply = tf.function(apply)
        sync = (lambda: variables[-1].numpy()) if point.device == "gpu" else (lambda: None)
        return Stepper(apply, sync)

    def run(self, task: Task) -> Iterator[Snapshot]:
        import tensorflow as tf

        dtype = tf.as_dtype(task.dtype)
        names = list(task.shapes)
        record = set(task.record_steps)
        with tf.device("/GPU:0" if task.device == "gpu" else "/CPU:0"):
            variables = [tf.Variable(a, dtype=dtype, name=n) for n, a in task.initial().items()]
            opt = self.optimizer(dict(task.kwargs), task.lrs is not None)
            for t, grads in task.gradients():
                if task.lrs is not None:
                    self.set_lr(opt, task.lr(t))
                tensors = [tf.constant(grads[n], dtype=dtype) for n in names]
                self.step(opt, tensors, variables)
                if t in record:
                    state = {k: {n: as_float64(tf.cast(s, tf.float64).numpy())
                                 for n, s in zip(names, slots, strict=True) if s is not None}
                             for k, slots in self.slots(opt, variables).items()}
                    params = {n: as_float64(tf.cast(v, tf.float64).numpy())
                              for n, v in zip(names, variables, strict=True)}
                    yield Snapshot(t, params, {k: v for k, v in state.items() if v})


class TFKeras(_TensorFlow):
    name = "tf_keras"
    preset = family = "tf_keras"
    BENCH = {  # noqa: RUF012 - class constant
        "jit_compile": ("apply_gradients in a tf.function; the optimizer's default jit_compile=True compiles "
                        "its update with XLA", True, {}),
        "tf.function": ("apply_gradients in a tf.function with jit_compile=False", True, {"jit_compile": False}),
    }

    def optimizer(self, kwargs, scheduled):
        import tf_keras

        return tf_keras.optimizers.RMSprop(**kwargs)

    def slots(self, opt, variables):
        out = {}
        for attr, kind in {"_velocities": "nu", "_average_gradients": "mu", "_momentums": "trace"}.items():
            slots = getattr(opt, attr, None) or []
            if slots:
                out[kind] = list(slots)
        return out


class TFKerasLegacy(_TensorFlow):
    name = "tf_keras_legacy"
    preset = family = "tf_keras_legacy"

    def optimizer(self, kwargs, scheduled):
        import tf_keras

        return tf_keras.optimizers.legacy.RMSprop(**kwargs)


class TF1(_TensorFlow):
    name = "tf1"
    preset = family = "tf1"
    BENCH = {"eager": _TensorFlow.BENCH["eager"]}  # noqa: RUF012 - tf1.function is the traced one

    _lr: float = 0.0

    def optimizer(self, kwargs, scheduled):
        import tensorflow as tf

        if scheduled:  # eager TF1 reads a zero-arg callable at every step
            kwargs = {**kwargs, "learning_rate": lambda: self._lr}
        return tf.compat.v1.train.RMSPropOptimizer(**kwargs)

    def set_lr(self, opt, lr: float) -> None:
        self._lr = lr


class TF1Function(_TensorFlow):
    """TF1's optimizer traced into one ``tf.function`` (graph mode), as TF2 code runs it."""

    name = "tf1.function"
    preset = family = "tf1"
    BENCH = {"tf.function": ("apply_gradients traced once into a tf.function", False, {})}  # noqa: RUF012

    def optimizer(self, kwargs, scheduled):
        import tensorflow as tf

        if scheduled:  # a Python callable would be frozen at trace time; a float32 variable is read per call,
            # and float32 is what TF1 makes of a Python float lr anyway (convert_to_tensor)
            self._lr_var = tf.Variable(0.0, dtype=tf.float32, trainable=False)
            kwargs = {**kwargs, "learning_rate": self._lr_var}
        return tf.compat.v1.train.RMSPropOptimizer(**kwargs)

    def step(self, opt, grads, variables):
        import tensorflow as tf

        if getattr(self, "_opt", None) is not opt:  # trace once per optimizer (per task)
            def apply(gs):
                opt.apply_gradients(zip(gs, variables, strict=True))

            self._opt, self._apply = opt, tf.function(apply)
        self._apply(grads)

    def set_lr(self, opt, lr: float) -> None:
        self._lr_var.assign(lr)


def _apply_raw(tf, var, ms, mom, mg, grad, lr, rho, momentum, epsilon) -> None:
    """One fused ``ResourceApply(Centered)RMSProp`` update of one variable (``mg`` None: not centered)."""
    common = dict(var=var.handle, ms=ms.handle, mom=mom.handle, lr=lr, rho=rho, momentum=momentum, epsilon=epsilon,
                  grad=grad)
    if mg is not None:
        tf.raw_ops.ResourceApplyCenteredRMSProp(mg=mg.handle, **common)
    else:
        tf.raw_ops.ResourceApplyRMSProp(**common)


class TFRaw(_TensorFlow):
    """The fused kernels called directly: ``ResourceApplyRMSProp`` or, centered,
    ``ResourceApplyCenteredRMSProp``, with scalar inputs in the variable dtype."""

    name = "tf.raw"
    preset = family = "tf_raw"

    def available(self) -> str | None:
        return missing("tensorflow")

    def versions(self) -> dict[str, str | None]:
        return {"tensorflow": package_version("tensorflow")}

    def run(self, task: Task) -> Iterator[Snapshot]:
        import tensorflow as tf

        kw = task.kwargs
        dtype = tf.as_dtype(task.dtype)
        names = list(task.shapes)
        record = set(task.record_steps)
        centered = bool(kw.get("centered", False))
        scalar = lambda x: tf.constant(x, dtype=dtype)  # noqa: E731 - inputs must have the var dtype
        host = lambda vs: {n: as_float64(tf.cast(v, tf.float64).numpy()) for n, v in vs.items()}  # noqa: E731
        with tf.device("/GPU:0" if task.device == "gpu" else "/CPU:0"):
            var = {n: tf.Variable(a, dtype=dtype) for n, a in task.initial().items()}
            ms = {n: tf.Variable(tf.fill(shape, scalar(kw.get("ms_init", 0.0)))) for n, shape in task.shapes.items()}
            mom = {n: tf.Variable(tf.zeros(shape, dtype)) for n, shape in task.shapes.items()}
            mg = {n: tf.Variable(tf.zeros(shape, dtype)) for n, shape in task.shapes.items()} if centered else {}
            rho, momentum, epsilon, lr = (scalar(kw[k]) for k in ("rho", "momentum", "epsilon", "lr"))
            for t, grads in task.gradients():
                if task.lrs is not None:
                    lr = scalar(task.lr(t))
                for n in names:
                    _apply_raw(tf, var[n], ms[n], mom[n], mg.get(n), tf.constant(grads[n], dtype=dtype), lr, rho,
                               momentum, epsilon)
                if t in record:
                    state = {"nu": host(ms)}
                    if centered:
                        state["mu"] = host(mg)
                    if kw["momentum"] > 0:  # with momentum 0 the buffer holds lr*g/den, not a trace
                        state["trace"] = host(mom)
                    yield Snapshot(t, host(var), state)

    def bench_variants(self, device: str) -> dict[str, str]:
        return {"tf.function": "ResourceApply(Centered)RMSProp per variable in one tf.function: the fused "
                               "C++ kernel, one launch per tensor"}

    def bench(self, point: BenchPoint) -> Stepper:
        import tensorflow as tf

        kw = point.kwargs
        dtype = tf.as_dtype(point.dtype)
        centered = bool(kw.get("centered", False))
        params0, grads0 = point.arrays()
        names = list(params0)
        with tf.device("/GPU:0" if point.device == "gpu" else "/CPU:0"):
            var = [tf.Variable(params0.pop(n), dtype=dtype) for n in names]
            grads = [tf.constant(grads0.pop(n), dtype=dtype) for n in names]
            ms = [tf.Variable(tf.fill(v.shape, tf.constant(kw.get("ms_init", 0.0), dtype))) for v in var]
            mom = [tf.Variable(tf.zeros(v.shape, dtype)) for v in var]
            mg = [tf.Variable(tf.zeros(v.shape, dtype)) for v in var] if centered else [None] * len(var)
            lr, rho, momentum, epsilon = (tf.constant(kw[k], dtype) for k in ("lr", "rho", "momentum", "epsilon"))

            @tf.function
            def apply() -> None:
                for i, g in enumerate(grads):
                    _apply_raw(tf, var[i], ms[i], mom[i], mg[i], g, lr, rho, momentum, epsilon)

        sync = (lambda: var[-1].numpy()) if point.device == "gpu" else (lambda: None)
        return Stepper(apply, sync)
