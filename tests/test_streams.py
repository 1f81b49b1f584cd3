"""Gradient streams: counter-based (step t on its own), chunk-invariant, seeded, bit-identical per dtype."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.base.streams import KINDS, GradientStream, StreamError, StreamSpec, cast, initial_params, native, record

SHAPES = {"weight": (2, 3), "bias": (2,), "w2": (16, 8)}
GENERATED = [k for k in KINDS if k not in ("recorded", "arrays")]


def _stack(stream: GradientStream, steps: int, size: int) -> dict[str, np.ndarray]:
    chunks = list(stream.chunks(steps, size=size))
    return {n: np.concatenate([c[n] for c in chunks]) for n in SHAPES}


@pytest.mark.parametrize("kind", GENERATED)
@given(size=st.integers(1, 12), t=st.integers(1, 25))
@settings(max_examples=15, deadline=None, derandomize=True)
def test_chunking_and_random_access_give_the_same_bits(kind: str, size: int, t: int) -> None:
    stream = GradientStream(StreamSpec(kind, seed=7), SHAPES)
    whole = _stack(stream, 25, size)
    fresh = GradientStream(StreamSpec(kind, seed=7), SHAPES)  # no state carried between steps
    for n in SHAPES:
        np.testing.assert_array_equal(whole[n][t - 1], fresh.step(t)[n])
        assert whole[n].shape == (25, *SHAPES[n])


def test_seed_and_tensor_name_select_independent_streams() -> None:
    a = GradientStream(StreamSpec("gaussian", 1), SHAPES).step(1)
    b = GradientStream(StreamSpec("gaussian", 2), SHAPES).step(1)
    assert not np.array_equal(a["weight"], b["weight"])
    # adding a tensor leaves the others' streams alone
    more = GradientStream(StreamSpec("gaussian", 1), {**SHAPES, "extra": (5,)}).step(1)
    np.testing.assert_array_equal(a["weight"], more["weight"])


def test_a_stream_is_never_materialised_whole() -> None:
    """A billion-step stream is fine: chunks are made on demand."""
    stream = GradientStream(StreamSpec("gaussian", 0), {"w": (1000,)})
    first = next(stream.chunks(10**9, size=4))
    assert first["w"].shape == (4, 1000)
    np.testing.assert_array_equal(stream.step(10**9 - 1)["w"], stream.step(10**9 - 1)["w"])


def test_kinds_have_their_documented_properties() -> None:
    def gen(kind, steps=20, **options):
        return _stack(GradientStream(StreamSpec(kind, 3, options), SHAPES), steps, 8)

    sparse = gen("sparse", zero_fraction=0.75)["w2"]
    assert 0.7 < np.mean(sparse == 0) < 0.8
    assert np.all(gen("zeros")["w2"] == 0)
    tiny = gen("tiny")["w2"]
    assert np.all(np.abs(tiny) < 1e-28) and np.all(np.float32(tiny) ** 2 == 0)  # g^2 underflows float32
    huge = gen("huge")["w2"]
    with np.errstate(over="ignore"):
        assert np.all(np.abs(huge) > 1e14) and np.isinf(np.float32(huge) ** 2).mean() > 0.8
    alt = gen("alternating")["w2"]
    np.testing.assert_array_equal(alt[1], -alt[0])
    np.testing.assert_array_equal(alt[2], alt[0])
    assert np.all(gen("constant", value=0.5)["bias"] == 0.5)
    const = gen("constant")["w2"]
    np.testing.assert_array_equal(const[0], const[-1])
    mixed = gen("mixed_scale", low=-6, high=3)["w2"]
    scale = np.median(np.abs(mixed), axis=0)  # a fixed scale per coordinate
    assert scale.max() / scale.min() > 1e6
    heavy = gen("lognormal", sigma=3.0)["w2"]
    assert np.abs(heavy).max() / np.median(np.abs(heavy)) > 1e3
    nan = gen("nonfinite", at_steps=[2, 5], value="nan", fraction=0.1)
    bad = [t + 1 for t in range(20) if np.isnan(nan["w2"][t]).any()]
    assert bad == [2, 5] and np.isnan(nan["w2"][1]).sum() == round(0.1 * 128)
    assert np.isnan(nan["bias"][1]).sum() == 1  # at least one element per tensor
    inf = gen("nonfinite", at_steps=[3], value="-inf")["weight"]
    assert np.isneginf(inf[2]).any() and np.isfinite(inf[np.arange(20) != 2]).all()


@pytest.mark.parametrize("compress", [False, True])
def test_recorded_streams_replay_in_chunks_with_their_initial_parameters(tmp_path, compress) -> None:
    rng = np.random.default_rng(0)
    grads = {"weight": rng.normal(size=(9, 2, 3)).astype(np.float32), "bias": rng.normal(size=(9, 2))}
    params = {"weight": np.ones((2, 3)), "bias": np.zeros(2)}
    path = record(tmp_path / "run.npz", grads, params, compress=compress)
    stream = GradientStream(StreamSpec("recorded", options={"path": str(path)}))
    assert stream.shapes == {"weight": (2, 3), "bias": (2,)} and stream.length == 9
    for size in (1, 4, 9):
        got = _stack_named(stream, 9, size)
        for n in grads:
            np.testing.assert_array_equal(got[n], grads[n].astype(np.float64))
    np.testing.assert_array_equal(stream.step(7)["bias"], grads["bias"][6])
    assert {n: p.tolist() for n, p in stream.recorded_params().items()} == {n: p.tolist() for n, p in params.items()}
    with pytest.raises(StreamError, match="the stream has 9 steps, 10 were asked for"):
        list(stream.chunks(10))


def _stack_named(stream, steps, size):
    chunks = list(stream.chunks(steps, size=size))
    return {n: np.concatenate([c[n] for c in chunks]) for n in stream.shapes}


def test_bad_recordings_are_one_line_errors(tmp_path) -> None:
    np.savez(tmp_path / "flat.npz", weight=np.zeros((3, 2)))
    with pytest.raises(StreamError, match="no 'grads/<name>' arrays"):
        GradientStream(StreamSpec("recorded", options={"path": str(tmp_path / "flat.npz")}))
    np.savez(tmp_path / "ragged.npz", **{"grads/a": np.zeros((3, 2)), "grads/b": np.zeros((4, 2))})
    with pytest.raises(StreamError, match="same number of steps"):
        GradientStream(StreamSpec("recorded", options={"path": str(tmp_path / "ragged.npz")}))
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(StreamError, match=r"not a readable \.npz"):
        GradientStream(StreamSpec("recorded", options={"path": str(tmp_path / "junk.npz")}))
    with pytest.raises(StreamError, match="no such recording"):
        GradientStream(StreamSpec("recorded", options={"path": str(tmp_path / "absent.npz")}))


@pytest.mark.parametrize(("kind", "options", "message"), [
    ("gausian", {}, "unknown stream kind 'gausian'"),
    ("gaussian", {"scael": 1.0}, "has no option 'scael'"),
    ("gaussian", {"scale": -1.0}, "scale=-1.0 is invalid"),
    ("sparse", {"zero_fraction": 1.5}, "zero_fraction=1.5 is invalid"),
    ("nonfinite", {"value": "nope"}, "value='nope' is invalid"),
    ("nonfinite", {"at_steps": [0]}, "at_steps=\\[0\\] is invalid"),
    ("mixed_scale", {"low": 3, "high": 1}, "low=3 is above high=1"),
])
def test_bad_stream_options_name_the_option(kind, options, message) -> None:
    with pytest.raises(StreamError, match=message):
        StreamSpec(kind, 0, options)


def test_cast_is_the_same_rounding_the_framework_sees() -> None:
    x = np.array([1 + 2**-8, 1 + 3 * 2**-8, 1 / 3, 3e38, np.nan, -1e-40, 1e5])
    np.testing.assert_array_equal(cast(x, "float32"), x.astype(np.float32).astype(np.float64))
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(cast(x, "float16"), x.astype(np.float16).astype(np.float64))
    bf = cast(x, "bfloat16")
    assert bf[0] == 1.0 and bf[1] == 1 + 2**-6  # ties to even
    assert np.isnan(bf[4])
    assert np.all(native(x, "bfloat16").view(np.uint32)[np.isfinite(bf)] & 0xFFFF == 0)  # exactly bf16
    np.testing.assert_array_equal(native(x, "bfloat16").astype(np.float64), bf)
    from harness.base.dtypes import DtypeError

    with pytest.raises(DtypeError, match="unknown dtype"):
        cast(x, "int8")


def test_initial_params_are_seeded_and_independent_of_the_gradients() -> None:
    a, b = initial_params(SHAPES, 0), initial_params(SHAPES, 0)
    np.testing.assert_array_equal(a["w2"], b["w2"])
    assert not np.array_equal(a["w2"], GradientStream(StreamSpec("gaussian", 0), SHAPES).step(1)["w2"])
    assert initial_params(SHAPES, 0, scale=0.5)["bias"].tolist() == (a["bias"] * 0.5).tolist()


@pytest.mark.parametrize("kind", ["gaussian", "lognormal", "mixed_scale", "sparse", "nonfinite", "alternating"])
@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "float16"])
def test_a_cached_stream_replays_the_same_bits(kind, dtype, monkeypatch) -> None:
    """Streams are generated once per process and kept (`CACHE_BYTES`); the values must not change."""
    from harness.base import streams

    shapes = {"w": (5, 4), "b": (3,)}
    cached = list(streams.GradientStream(StreamSpec(kind, 7), shapes).steps(30, dtype, as_native=True))
    again = list(streams.GradientStream(StreamSpec(kind, 7), shapes).steps(30, dtype, as_native=True))
    monkeypatch.setattr(streams._CACHE, "budget", 0)  # nothing cached: the chunked generator
    fresh = list(streams.GradientStream(StreamSpec(kind, 7), shapes).steps(30, dtype, as_native=True))
    for a, b, c in zip(cached, again, fresh, strict=True):
        for n in shapes:
            assert a[n].dtype == c[n].dtype
            np.testing.assert_array_equal(a[n], c[n])
            np.testing.assert_array_equal(b[n], c[n])


def test_the_stream_cache_keeps_to_its_budget() -> None:
    from harness.base.streams import _StreamCache

    cache = _StreamCache(4 * 8 * 10 * 100)  # room for 4 streams of 10 steps x 100 values
    for seed in range(10):
        assert cache.get(GradientStream(StreamSpec("gaussian", seed), {"w": (100,)}), 10) is not None
    assert len(cache.items) == 4 and cache.used <= cache.budget
    too_big = GradientStream(StreamSpec("gaussian", 0), {"w": (100_000,)})
    assert cache.get(too_big, 10) is None  # larger than a quarter of the budget: streamed, never kept
