"""The frame step (backbone + 31 depth steps + sampling + feedback) is one graph with no
breaks, and what torch.compile captures computes exactly what the eager step computes."""

from __future__ import annotations

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.fakes.tiny_csm import shared_tiny_csm  # noqa: E402
from wyoming_verba.backends.csm.frame_step import compile_step  # noqa: E402
from wyoming_verba.backends.csm.generator import CsmGenerator, Sampling, Segment  # noqa: E402
from wyoming_verba.backends.csm.loader import load_model  # noqa: E402
from wyoming_verba.backends.csm.stopping import StopRules, StopState  # noqa: E402

GREEDY = Sampling(temperature=0, top_k=0)


@pytest.fixture(scope="module")
def loaded():
    return load_model(str(shared_tiny_csm()), "cpu", "auto", "off")


def frame_fn(gen: CsmGenerator, sampling: Sampling):
    step = gen.step

    def frame(hidden, position, noise):
        return step.frame(hidden, position, noise, sampling)

    return frame


def test_frame_step_is_one_graph_without_breaks(loaded):
    gen = CsmGenerator(loaded.model, loaded.tokenizer, "eager")
    with torch.inference_mode():
        pos = gen.prefill((None, 0), [Segment(0, "Hello there.")])
        explained = torch._dynamo.explain(frame_fn(gen, Sampling(0.9, 50)))(
            gen._hidden, gen.step.positions[pos:pos + 1], gen.step.noise(None))
    assert explained.break_reasons == []
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)


def test_compiled_frames_equal_eager_frames(loaded):
    """Greedy, with a voice prefix and a context turn: the graph torch.compile captures
    (fullgraph, so any break would raise) gives the eager loop's codes exactly. The graph
    runs on an FX backend that only counts compilations, keeping the test fast; inductor's
    own code generation is checked on the GPU by tools/benchmarks/csm_gpu.py."""
    torch._dynamo.reset()
    graphs = []

    def counting(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    eager = CsmGenerator(loaded.model, loaded.tokenizer, "eager")
    compiled = CsmGenerator(loaded.model, loaded.tokenizer, "eager")
    compiled._steps[GREEDY] = compile_step(frame_fn(compiled, GREEDY), cuda_graphs=False,
                                           backend=counting)
    g = torch.Generator().manual_seed(3)
    voice = [Segment(0, "Voice prompt.", torch.randint(1, 2048, (6, 32), generator=g))]
    context = [Segment(1, "Before.", torch.randint(1, 2048, (5, 32), generator=g))]
    runs = []
    for gen in (eager, compiled):
        prefix = gen.prefix("voice", voice)
        runs.append(torch.stack(list(gen.frames(
            "Hi there.", 0, StopState(StopRules(8)), prefix=prefix, context=context,
            sampling=GREEDY))))
    assert runs[0].shape == (8, 32)
    assert torch.equal(runs[0], runs[1])
    assert len(graphs) == 1  # one compilation served every frame: no recompiles either


async def test_compile_failure_falls_back_to_eager(monkeypatch):
    """compiled -> eager, with nothing in between (a 'static' middle mode kept the host
    syncs the compiled step removes)."""
    from wyoming_verba.backends.csm import CsmBackend, generator
    from wyoming_verba.settings import Settings

    def broken(frame, cuda_graphs, backend="inductor"):
        def run(*args):
            raise RuntimeError("inductor exploded")

        return run

    monkeypatch.setattr(generator, "compile_step", broken)
    tried = []
    original = CsmBackend._warm_up

    def recording(self):
        tried.append(self._gen.mode)
        return original(self)

    monkeypatch.setattr(CsmBackend, "_warm_up", recording)
    backend = CsmBackend(Settings(csm_model=str(shared_tiny_csm()), csm_device="cpu",
                                  csm_compile="on", backend="csm"))
    await backend.start()
    try:
        assert tried == ["compiled", "eager"]
        assert backend._gen.mode == "eager"
    finally:
        await backend.stop()
