"""The whole model: the §3.10 shape trace over N, F, L, B, U, G; gradients; parameter counts and state_dict
keys of §3.11 / Appendix A; configuration; autocast; CUDA."""

from __future__ import annotations

import pytest
import torch

from dualvgr.core.errors import SpecError
from dualvgr.model import DualVGR, DualVGRConfig, DualVGROutput, dualvgr_loss


def expected_state_dict(u: int, g: int, *, d=768, w=300, vd=2048, vq=4000, va=1000, heads=4) -> list[tuple[str, tuple]]:
    """The Appendix A listing, generalised over U and G with the §3.11 patterns, in state_dict order."""
    h2 = d // 2
    lstm = lambda prefix, inp: [  # noqa: E731
        (f"{prefix}.{name}{sfx}", shape)
        for sfx in ("", "_reverse")
        for name, shape in (("weight_ih_l0", (4 * h2, inp)), ("weight_hh_l0", (4 * h2, h2)),
                            ("bias_ih_l0", (4 * h2,)), ("bias_hh_l0", (4 * h2,)))
    ]
    v = "visual_input_unit"
    keys = [("feature_aggregation.v_proj.weight", (d, d)), ("feature_aggregation.attn.weight", (1, d)),
            ("feature_aggregation.attn.bias", (1,)), ("linguistic_input_unit.encoder_embed.weight", (vq, w))]
    keys += lstm("linguistic_input_unit.concatRNN.rnn", w) + lstm("linguistic_input_unit.encoder", w)
    keys += lstm("visual_appearance_input_unit.encoder", vd)
    keys += [("visual_motion_input_unit.weight", (d, vd)), ("visual_motion_input_unit.bias", (d,))]
    for i in range(u):
        keys += [(f"{v}.queryAttn.{i}.feat_enhance.weight", (d, d)), (f"{v}.queryAttn.{i}.feat_enhance.bias", (d,)),
                 (f"{v}.queryAttn.{i}.fc.weight", (1, d)), (f"{v}.queryAttn.{i}.fc.bias", (1,))]
    for which in ("appear", "motion"):
        for i in range(u):
            keys += [(f"{v}.queryPunish_{which}.{i}.query_weight.weight", (d, w)),
                     (f"{v}.queryPunish_{which}.{i}.query_weight.bias", (d,))]
    for gat in ("appearance_GCN", "motion_GCN", "acGCN", "mcGCN"):
        for k in range(u * g):
            for h in range(heads):
                p = f"{v}.{gat}.{k}.attention_{h}"
                keys += [(f"{p}.W.weight", (d // heads, d)), (f"{p}.W.bias", (d // heads,)),
                         (f"{p}.a.weight", (1, 2 * d // heads)), (f"{p}.a.bias", (1,))]
    for which in ("appearance", "motion"):
        for i in range(u):
            p = f"{v}.attention_{which}.{i}.project"
            keys += [(f"{p}.0.weight", (d, d)), (f"{p}.0.bias", (d,)), (f"{p}.2.weight", (1, d))]
    keys += [(f"{v}.visualfusion.linear0.weight", (512, d)), (f"{v}.visualfusion.linear0.bias", (512,)),
             (f"{v}.visualfusion.linear1.weight", (512, d)), (f"{v}.visualfusion.linear1.bias", (512,)),
             (f"{v}.visualfusion.linear_out.weight", (d, 256)), (f"{v}.visualfusion.linear_out.bias", (d,))]
    keys += [("output_unit.question_proj.weight", (d, d)), ("output_unit.question_proj.bias", (d,)),
             ("output_unit.classifier.1.weight", (d, 2 * d)), ("output_unit.classifier.1.bias", (d,))]
    keys += [(f"output_unit.classifier.3.{n}", (d,)) for n in ("weight", "bias", "running_mean", "running_var")]
    keys += [("output_unit.classifier.3.num_batches_tracked", ()), ("output_unit.classifier.5.weight", (va, d)),
             ("output_unit.classifier.5.bias", (va,))]
    return keys


def _meta_model(**overrides) -> DualVGR:
    with torch.device("meta"):  # no memory, no init cost: only structure
        return DualVGR(DualVGRConfig(**{"question_vocab_size": 4000, "answer_vocab_size": 1000, **overrides}))


@pytest.mark.parametrize("units,graphs,entries", [(2, 1, 203), (1, 1, 125), (3, 1, 281), (2, 2, 203 + 2 * 4 * 16)])
def test_state_dict_keys_and_order(units, graphs, entries):
    model = _meta_model(unit_layers=units, graph_layers=graphs)
    got = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    expected = expected_state_dict(units, graphs)
    assert len(got) == entries, f"U={units}, G={graphs}: {len(got)} state_dict entries, expected {entries}"
    assert got == expected, "state_dict keys, order or shapes differ from the original's (§3.11, Appendix A)"
    params = [k for k, _ in model.named_parameters()]
    buffers = {"running_mean", "running_var", "num_batches_tracked"}
    assert params == [k for k, _ in expected if k.rsplit(".", 1)[1] not in buffers], (
        "parameter registration order must match Appendix A without the BN buffers: Adam state is keyed by index"
    )


@pytest.mark.parametrize(
    "units,graphs,base",
    [(2, 1, 25_823_523), (1, 1, 21_218_578), (3, 1, 25_823_523 + 4_604_945), (2, 2, 32_529_579 - 1_200_000 - 769_000)],
)
@pytest.mark.parametrize("vq,va", [(4000, 1000), (1, 1), (6543, 2)])
def test_parameter_count_at_768(units, graphs, base, vq, va):
    model = _meta_model(question_vocab_size=vq, answer_vocab_size=va, unit_layers=units, graph_layers=graphs)
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert count == base + 300 * vq + 769 * va, (
        f"U={units}, G={graphs}, V_q={vq}, V_a={va}: {count:,} parameters, the original has "
        f"{base + 300 * vq + 769 * va:,} (§3.11)"
    )


TRACE = [  # (B, N, F, L, U, G)
    pytest.param(3, 8, 16, 7, 2, 1, id="paper-trace"),
    pytest.param(1, 3, 4, 5, 2, 1, id="batch-of-one"),
    pytest.param(2, 5, 3, 1, 1, 1, id="one-unit-one-word"),
    pytest.param(4, 3, 2, 9, 3, 1, id="three-units"),
    pytest.param(2, 4, 4, 6, 2, 2, id="two-graph-layers"),
    pytest.param(2, 6, 5, 4, 1, 2, id="one-unit-two-graph-layers"),
]


@pytest.mark.parametrize("b,n,f,l,u,g", TRACE)
def test_model_shape_trace(b, n, f, l, u, g, tiny_model, make_inputs, run):
    """Hooks on every block see the §3.10 shapes (with this test's small D, W, V)."""
    model = tiny_model(num_clips=n, frames_per_clip=f, unit_layers=u, graph_layers=g).eval()
    c = model.config
    d, w, va = c.module_dim, c.word_dim, c.answer_vocab_size
    seen: dict[str, list[tuple]] = {}

    def hook(name):
        def record(_module, _inputs, output):
            outs = output if isinstance(output, (tuple, list)) else (output,)
            seen.setdefault(name, []).append(tuple(tuple(o.shape) for o in outs if torch.is_tensor(o)))
        return record

    blocks = {
        "linguistic": model.linguistic_input_unit, "appearance": model.visual_appearance_input_unit,
        "motion": model.visual_motion_input_unit, "query_attn": model.visual_input_unit.queryAttn[0],
        "query_punish": model.visual_input_unit.queryPunish_appear[0], "gat": model.visual_input_unit.acGCN[0],
        "gat_head": model.visual_input_unit.acGCN[0].attention_0,
        "fusion": model.visual_input_unit.attention_appearance[0], "mfb": model.visual_input_unit.visualfusion,
        "pool": model.feature_aggregation, "output": model.output_unit,
    }
    handles = [m.register_forward_hook(hook(name)) for name, m in blocks.items()]
    out = run(model, make_inputs(c, batch=b, length=l))
    for handle in handles:
        handle.remove()
    expected = {
        "linguistic": ((b, d), (b, l, w), (b, l, d)), "appearance": ((b, n, d),), "motion": ((b, n, d),),
        "query_attn": ((b, w), (b, l)), "query_punish": ((b, n, d // 4),), "gat": ((b, n, d),),
        "fusion": ((b, n, d), (b, 2, n, 1)), "mfb": ((b, n, d),), "pool": ((b, d),), "output": ((b, va),),
    }
    for name, shapes in expected.items():
        assert seen[name][0] == shapes, f"{name}: {seen[name][0]}, §3.10 says {shapes}"
    assert "gat_head" not in seen, "the multi-head GAT evaluates its heads together, not through head.forward"
    assert isinstance(out, DualVGROutput) and out.logits.shape == (b, va)
    for name in ("common_appearance", "common_motion", "specific_appearance", "specific_motion"):
        lst = getattr(out, name)
        assert len(lst) == u * g and all(t.shape == (b, n, d) for t in lst), f"{name}: T = U*G tensors (B,N,D)"
    assert out.appearance_fusion.shape == out.motion_fusion.shape == (b, n, d)


# Softmax is shift-invariant, so a bias added before a softmax has an exactly-zero gradient in theory.
SHIFT_INVARIANT = ("queryAttn.0.fc.bias", "queryAttn.1.fc.bias", "feature_aggregation.attn.bias")


@pytest.mark.parametrize("units,graphs", [(2, 1), (1, 2), (2, 2)])
def test_every_parameter_gets_a_finite_gradient(units, graphs, tiny_model, make_inputs, run):
    model = tiny_model(unit_layers=units, graph_layers=graphs).train()
    inputs = make_inputs(model.config, batch=4, length=6)
    out = run(model, inputs)
    losses = dualvgr_loss(out, inputs["answers"], alpha=1.0, beta=1e-3)
    assert all(torch.isfinite(v) for v in losses.values()), f"non-finite loss terms: {losses}"
    losses["total"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} received no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        if not name.endswith(SHIFT_INVARIANT):
            assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


def test_initialisation_follows_the_original(tiny_model):
    """§3.9: xavier_uniform for Linear/LSTM weights, zero biases, embedding U(-1,1), BatchNorm 1/0."""
    model = tiny_model()
    for name, p in model.named_parameters():
        if name.endswith("encoder_embed.weight"):
            assert p.min() >= -1 and p.max() <= 1 and p.std() > 0.4, "embedding is U(-1, 1)"
        elif "classifier.3" in name:
            assert torch.all(p == (1 if name.endswith("weight") else 0)), f"{name}: BatchNorm default init"
        elif ".bias" in name or "bias_" in name:
            assert torch.all(p == 0), f"{name}: biases start at zero"
        else:
            fan_out, fan_in = p.shape
            bound = (6 / (fan_in + fan_out)) ** 0.5
            assert p.abs().max() <= bound + 1e-6 and p.abs().max() > bound / 2, f"{name}: xavier_uniform bound"


def test_config_round_trip_and_validation(tiny_config):
    config = tiny_config(unit_layers=3, original_graph_indexing=True)
    assert DualVGRConfig.from_dict(config.to_dict()) == config
    assert DualVGR.from_dict(config.to_dict()).config == config
    with pytest.raises(SpecError, match="unknown model config key.*'units'"):
        DualVGRConfig.from_dict({**config.to_dict(), "units": 2})
    with pytest.raises(SpecError, match="module_dim=18 must be even .* divisible by gat_heads=4"):
        tiny_config(module_dim=18)
    with pytest.raises(SpecError, match="unit_layers must be a positive integer, got 0"):
        tiny_config(unit_layers=0)
    with pytest.raises(TypeError):
        DualVGRConfig()  # the vocabulary sizes have no default


def test_paper_defaults():
    c = DualVGRConfig(question_vocab_size=10, answer_vocab_size=10)
    assert (c.vision_dim, c.module_dim, c.word_dim, c.num_clips, c.frames_per_clip) == (2048, 768, 300, 8, 16)
    assert (c.unit_layers, c.graph_layers, c.gat_heads, c.original_graph_indexing) == (2, 1, 4, False)


def test_cpu_training_lstm_path_matches_eval_path(tiny_model, make_inputs):
    """Training mode runs the appearance LSTM without oneDNN (faster backward); it computes the same thing."""
    model = tiny_model()
    encoder = model.visual_appearance_input_unit
    encoder.embedding_dropout.p = encoder.finalvisual_dropout.p = 0.0
    x = make_inputs(model.config)["appearance"]
    outputs, grads = [], []
    for mode in (True, False):
        encoder.train(mode)
        encoder.zero_grad()
        y = encoder(x)
        y.square().sum().backward()
        outputs.append(y)
        grads.append(encoder.encoder.weight_ih_l0.grad.clone())
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)
    assert torch.backends.mkldnn.enabled, "the oneDNN switch is restored after the LSTM"


def test_autocast_bf16_cpu(tiny_model, make_inputs, run):
    model = tiny_model().train()
    inputs = make_inputs(model.config, batch=3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = run(model, inputs)
    losses = dualvgr_loss(out, inputs["answers"], 1.0, 1e-8)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values()), "loss is float32 and finite"
    losses["total"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.gpu
def test_cuda_forward_backward(tiny_model, make_inputs, run, monkeypatch):
    """Runs on CUDA with CPU or CUDA lengths, keeps the node embeddings on the device (B41), agrees with CPU,
    and trains under bf16 autocast."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # TF32 would move the CPU comparison by ~1e-3
    cpu_model = tiny_model().eval()
    model = tiny_model().cuda().eval()
    inputs = make_inputs(model.config, batch=3, device="cuda")
    out = run(model, inputs)
    assert out.logits.device.type == "cuda"
    assert all(t.device.type == "cuda" for t in out.common_appearance + out.specific_motion), "B41: stay on device"
    cpu_inputs = {k: v.cpu() for k, v in inputs.items()}
    torch.testing.assert_close(out.logits.cpu(), run(cpu_model, cpu_inputs).logits, rtol=1e-4, atol=1e-4)
    cuda_lengths = {**inputs, "question_len": inputs["question_len"].cuda()}
    torch.testing.assert_close(run(model, cuda_lengths).logits, out.logits, msg="CUDA lengths are accepted (B3)")
    model.train()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = run(model, inputs)
    losses = dualvgr_loss(out, inputs["answers"], 1.0, 1e-8)
    losses["total"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_unknown_graph_module_lists_the_registered_ones(tiny_config):
    with pytest.raises(SpecError) as err:
        tiny_config(graph_module="GCN")
    assert str(err.value) == (
        "model.graph_module is 'GCN'; registered graph modules: GAT (dualvgr.model.layers.GRAPH_MODULES)"
    )


def test_default_graph_module_is_the_originals_gat(tiny_model):
    from dualvgr.model.layers import PunishedGAT

    model = tiny_model()
    assert model.config.graph_module == "GAT"
    assert all(type(m) is PunishedGAT for m in model.visual_input_unit.appearance_GCN)
