"""Presets take each framework's own argument names and defaults, and reject what it rejects."""

from __future__ import annotations

import inspect

import pytest

from reference import RMSpropSpec, presets

#: The constructor signatures as documented in ../shared/docs/rmsprop-variants.md (minus params).
SIGNATURES = {
    "torch": {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0, "momentum": 0, "centered": False,
              "capturable": False, "foreach": None, "maximize": False, "differentiable": False},
    "keras": {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "centered": False,
              "weight_decay": None, "clipnorm": None, "clipvalue": None, "global_clipnorm": None,
              "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
              "loss_scale_factor": None, "gradient_accumulation_steps": None, "name": None},
    "tf_keras": {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "centered": False,
                 "weight_decay": None, "clipnorm": None, "clipvalue": None, "global_clipnorm": None,
                 "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": 100,
                 "jit_compile": True, "name": "RMSprop"},
    "tf_keras_legacy": {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7,
                        "centered": False, "name": "RMSprop"},
    "tf1": {"learning_rate": inspect.Parameter.empty, "decay": 0.9, "momentum": 0.0, "epsilon": 1e-10,
            "use_locking": False, "centered": False, "name": "RMSProp"},
    "optax": {"learning_rate": inspect.Parameter.empty, "decay": 0.9, "eps": 1e-8, "initial_scale": 0.0,
              "eps_in_sqrt": True, "centered": False, "momentum": None, "nesterov": False,
              "bias_correction": False},
}
SIGNATURES["tf_raw"] = {"lr": inspect.Parameter.empty, "rho": inspect.Parameter.empty,
                        "momentum": inspect.Parameter.empty, "epsilon": inspect.Parameter.empty,
                        "centered": False, "ms_init": 0.0}  # the op's inputs; centered picks the op
SIGNATURES |= {  # issue 16, read from each package's source (reference/implementations/<module>.py names the file)
    "keras2": {"lr": 0.001, "rho": 0.9, "epsilon": None, "decay": 0.0},
    "jax_example": {"step_size": inspect.Parameter.empty, "gamma": 0.9, "eps": 1e-8, "momentum": 0.0},
    "timm": {"lr": 1e-2, "alpha": 0.9, "eps": 1e-10, "weight_decay": 0, "momentum": 0.0, "centered": False,
             "decoupled_decay": False, "corrected_weight_decay": False, "lr_in_momentum": True, "caution": False,
             "foreach": None},
    "sb3": {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0, "momentum": 0, "centered": False},
    "pfrl": SIGNATURES["torch"],  # a subclass of torch.optim.RMSprop: torch's constructor
    "paddle": {"learning_rate": inspect.Parameter.empty, "rho": 0.95, "epsilon": 1e-6, "momentum": 0.0,
               "centered": False, "weight_decay": None, "grad_clip": None, "name": None},
    "bitsandbytes": {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0, "momentum": 0, "centered": False,
                     "optim_bits": 32, "args": None, "min_8bit_size": 4096},
    "mlx": {"learning_rate": inspect.Parameter.empty, "alpha": 0.99, "eps": 1e-8},
    "bitsandbytes_8bit": {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0, "momentum": 0,
                          "centered": False, "args": None, "min_8bit_size": 4096},
}
SIGNATURES["keras_jax"] = SIGNATURES["keras_torch"] = SIGNATURES["keras"]
SIGNATURES["spec"] = {}  # RMSpropSpec's knobs as keywords


@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_signature_is_the_frameworks_own(name: str) -> None:
    params = inspect.signature(presets.PRESETS[name]).parameters
    named = {k: p.default for k, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    assert named == SIGNATURES[name]


@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_defaults_build_a_spec(name: str) -> None:
    spec = presets.defaults(name)
    assert isinstance(spec, RMSpropSpec) and spec.framework == name


@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_unknown_argument_is_a_type_error(name: str) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        presets.PRESETS[name](**presets.REQUIRED_DEFAULTS.get(name, {}), betas=(0.9, 0.99))


@pytest.mark.parametrize("name", ["tf1", "tf_raw", "optax"])
def test_required_learning_rate(name: str) -> None:
    with pytest.raises(TypeError):
        presets.PRESETS[name]()


LR = {"torch": "lr", "tf_raw": "lr", "spec": "lr", "keras2": "lr", "jax_example": "step_size", "timm": "lr",
      "sb3": "lr", "pfrl": "lr", "bitsandbytes": "lr", "bitsandbytes_8bit": "lr"}
DECAY = {"torch": "alpha", "keras": "rho", "keras_jax": "rho", "keras_torch": "rho", "tf_keras": "rho",
         "tf_keras_legacy": "rho", "tf1": "decay", "tf_raw": "rho", "optax": "decay", "spec": "decay",
         "keras2": "rho", "jax_example": "gamma", "timm": "alpha", "sb3": "alpha", "pfrl": "alpha", "paddle": "rho",
         "bitsandbytes": "alpha", "bitsandbytes_8bit": "alpha", "mlx": "alpha"}
EPS = {"torch": "eps", "optax": "eps", "spec": "eps", "jax_example": "eps", "timm": "eps", "sb3": "eps",
       "pfrl": "eps", "bitsandbytes": "eps", "bitsandbytes_8bit": "eps", "mlx": "eps"}


@pytest.mark.parametrize("name", list(presets.PRESETS))
@pytest.mark.parametrize(("knob", "value"), [("lr", -0.01), ("decay", 1.5), ("decay", -0.1),
                                              ("eps", -1e-8), ("momentum", -0.5), ("lr", "fast")])
def test_values_the_framework_rejects(name: str, knob: str, value: object) -> None:
    arg = {"lr": LR.get(name, "learning_rate"), "decay": DECAY[name], "eps": EPS.get(name, "epsilon"),
           "momentum": "momentum"}[knob]
    kwargs = {**presets.REQUIRED_DEFAULTS.get(name, {}), arg: value}
    with pytest.raises((ValueError, TypeError), match=arg):
        presets.PRESETS[name](**kwargs)


def test_semantics_of_each_preset() -> None:
    t = presets.torch(momentum=0.9, weight_decay=0.1)
    assert (t.eps_placement, t.lr_placement, t.weight_decay_mode, t.rounding_label) == \
        ("outside", "after_buffer", "coupled", "exact")
    k = presets.keras(weight_decay=0.01)
    assert (k.eps_placement, k.lr_placement, k.weight_decay_mode) == ("inside", "in_buffer", "decoupled")
    assert k.hyperparam_rounding == {"lr", "weight_decay"}
    assert presets.keras_jax(weight_decay=0.01).hyperparam_rounding == {"lr"}
    kt = presets.keras_torch(weight_decay=0.01, centered=True)
    assert (kt.centered_order, kt.weight_decay_mode) == ("eps_then_sub", "multiplicative")
    assert presets.keras(weight_decay=None).weight_decay_mode == "none"
    tf1 = presets.tf1(0.01)
    assert tf1.initial_accumulator == 1.0 and tf1.rounding_label == "float32:lr,decay,eps,momentum"
    raw = presets.tf_raw(0.01, 0.9, 0.0, 1e-7, centered=True, ms_init=1.0)
    assert (raw.eps_placement, raw.lr_placement, raw.initial_accumulator, raw.rounding_label) == \
        ("inside", "in_buffer", 1.0, "exact")
    o = presets.optax(0.01, eps_in_sqrt=False, momentum=0.9, nesterov=True, bias_correction=True,
                      initial_scale=1.0)
    assert (o.eps_placement, o.nesterov, o.bias_correction, o.initial_accumulator) == \
        ("outside", True, True, 1.0)


def test_legacy_switch_and_silent_rewrites_are_recorded() -> None:
    spec = presets.tf_keras_legacy(epsilon=0.0)
    assert spec.eps == 1e-7 and spec.effective_eps_placement == "outside"
    assert any("epsilon=0" in n for n in spec.notes)
    assert presets.tf_keras_legacy(momentum=0.5).effective_eps_placement == "inside"
    assert presets.tf_keras_legacy(decay=0.01).inverse_time_decay == 0.01
    assert presets.tf_keras_legacy(lr=0.5).lr == 0.5  # legacy honours the alias
    ignored = presets.tf_keras(lr=0.5)  # the new optimizer silently ignores it
    assert ignored.lr == 0.001 and any("IGNORED" in n for n in ignored.notes)
    assert any("decay=" in n for n in presets.keras(decay=0.1).notes)
    clip = presets.tf_keras(clipnorm=1.0, clipvalue=0.5)
    assert clip.clipvalue is None and any("clipvalue is silently ignored" in n for n in clip.notes)
    assert presets.keras(clipnorm=0.0).clipnorm is None
    assert any("nesterov" in n for n in presets.optax(0.1, nesterov=True).notes)


def test_framework_specific_rejections() -> None:
    with pytest.raises(ValueError, match="only one of"):
        presets.keras(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="both clipnorm and global_clipnorm"):
        presets.tf_keras(clipnorm=1.0, global_clipnorm=1.0)
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        presets.keras(gradient_accumulation_steps=1)
    with pytest.raises(ValueError, match="momentum"):
        presets.tf_keras_legacy(momentum=1.5)
    with pytest.raises(ValueError, match="decay"):
        presets.tf_keras(decay=0.1)
    with pytest.raises(ValueError, match="clipvalue"):
        presets.tf_keras_legacy(clipvalue=-1.0)
    with pytest.raises(ValueError, match="mutually exclusive"):
        presets.torch(foreach=True, differentiable=True)
    with pytest.raises(ValueError, match="ema_momentum"):
        presets.keras(use_ema=True, ema_momentum=2.0)
    with pytest.raises(KeyError, match="known"):
        presets.get("pytorch")
