"""The MusicGen backend, end to end, with tiny randomly initialised MusicGen models that the
tests build and save themselves (T5 text encoder, EnCodec audio codec, decoder: a few
thousand weights, a whole-word Unigram T5 tokenizer), loaded offline from tmp_path.

Skipped only when ``transformers`` (the ``musicgen`` extra) is not installed.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys

import numpy as np
import pytest

from services.errors import GenerationRequestError, ModelNotAvailableError
from services.generation import MusicGenerationEngine

HAVE_TRANSFORMERS = importlib.util.find_spec("transformers") is not None

needs_transformers = pytest.mark.skipif(
    not HAVE_TRANSFORMERS, reason="transformers is not installed (pip install 'dgx-music[musicgen]')"
)

WORDS = "upbeat electronic dance music at 140 bpm dark techno in d minor calm piano".split()
HOP = 640  # EnCodec samples per frame: the product of the upsampling ratios below
CODEBOOKS = 2  # per audio channel


def build_tiny_musicgen(folder, *, channels: int = 1, sampling_rate: int = 32000, seed: int = 0):
    """Save a tiny random MusicGen (model, processor, tokenizer) to ``folder``; return its config."""
    import torch
    from transformers import (
        EncodecConfig,
        EncodecFeatureExtractor,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        MusicgenProcessor,
        T5Config,
        T5TokenizerFast,
    )
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [("\u2581" + word, -1.0) for word in WORDS]
    unigram = Tokenizer(models.Unigram(vocab, unk_id=2))  # whole words as pieces, like SentencePiece's
    unigram.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer = T5TokenizerFast(tokenizer_object=unigram, extra_ids=0)
    text = T5Config(vocab_size=len(vocab), d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2,
                    decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    frame_rate = math.ceil(sampling_rate / HOP)
    audio = EncodecConfig(sampling_rate=sampling_rate, hidden_size=8, num_filters=2, upsampling_ratios=[8, 5, 4, 4],
                          codebook_size=16, num_lstm_layers=1, num_residual_layers=1,
                          target_bandwidths=[CODEBOOKS * frame_rate * 4 / 1000])  # 4 bits per 16-entry code
    decoder = MusicgenDecoderConfig(vocab_size=16, max_position_embeddings=2048, num_hidden_layers=1, ffn_dim=16,
                                    num_attention_heads=2, hidden_size=8, num_codebooks=CODEBOOKS * channels,
                                    audio_channels=channels, pad_token_id=16, bos_token_id=16)
    config = MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=decoder)
    torch.manual_seed(seed)
    model = MusicgenForConditionalGeneration(config)
    with torch.no_grad():  # EnCodec codebooks start at zero, so every code would decode alike
        for layer in model.audio_encoder.quantizer.layers:
            layer.codebook.embed.normal_()
    model.generation_config.decoder_start_token_id = 16
    model.generation_config.pad_token_id = 16
    model.save_pretrained(folder)
    extractor = EncodecFeatureExtractor(feature_size=channels, sampling_rate=sampling_rate)
    MusicgenProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    return config


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    if not HAVE_TRANSFORMERS:
        pytest.skip("transformers is not installed (pip install 'dgx-music[musicgen]')")
    models = {}
    for name, channels, rate in (("mono", 1, 32000), ("stereo24k", 2, 24000)):
        folder = tmp_path_factory.mktemp(f"musicgen-{name}")
        build_tiny_musicgen(folder, channels=channels, sampling_rate=rate)
        models[name] = str(folder)
    return models


@pytest.fixture(scope="module")
def mono_engine(tiny_models):
    return MusicGenerationEngine(backend="musicgen", model_path=tiny_models["mono"])


@needs_transformers
def test_generates_exact_stereo_float32_from_a_local_mono_model(mono_engine, tiny_models):
    import torch

    audio, seconds = mono_engine.generate_audio("dark techno in D minor", duration=0.5, seed=1)
    assert isinstance(audio, torch.Tensor) and audio.dtype == torch.float32
    assert tuple(audio.shape) == (2, 16000) and torch.isfinite(audio).all()
    assert torch.equal(audio[0], audio[1])  # a mono model's channel, duplicated
    assert float(audio.abs().max()) > 0 and seconds > 0
    info = mono_engine.get_info()
    assert info["backend"] == "musicgen" and info["model_path"] == tiny_models["mono"]
    assert (info["model_channels"], info["model_sample_rate"], info["frame_rate"]) == (1, 32000, 50)
    assert (info["channels"], info["sample_rate"], info["max_duration_seconds"]) == (2, 32000, 30.0)
    assert info["device"] in ("cpu", "cuda")
    assert mono_engine.model_name == os.path.basename(tiny_models["mono"])
    assert mono_engine.last_seed == 1 and mono_engine.last_spec is None
    assert mono_engine.last_result.prompt_spec.key == "D minor"


@needs_transformers
def test_seed_makes_it_repeatable(mono_engine):
    first, _ = mono_engine.generate_audio("calm piano", duration=0.4, seed=3)
    again, _ = mono_engine.generate_audio("calm piano", duration=0.4, seed=3)
    other, _ = mono_engine.generate_audio("calm piano", duration=0.4, seed=4)
    assert first.numpy().tobytes() == again.numpy().tobytes()
    assert not np.array_equal(first.numpy(), other.numpy())


@needs_transformers
def test_generation_does_not_touch_the_global_torch_rng(mono_engine):
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    mono_engine.generate_audio("upbeat dance music", duration=0.2, seed=9)
    assert torch.equal(torch.rand(3), expected)


@needs_transformers
@pytest.mark.parametrize("duration", [0.2, 0.31, 1.0])
def test_token_count_gives_just_enough_frames(mono_engine, duration):
    backend = mono_engine._backend
    frames = math.ceil(duration * 50)
    assert backend.max_new_tokens(duration) == frames + CODEBOOKS - 1  # the codebook delay pattern
    raw = backend.generate("dark techno", duration, 0, 32000)
    assert raw.dtype == np.float32 and raw.shape == (1, frames * HOP)  # >= duration, < one frame more


@needs_transformers
def test_stereo_model_at_another_rate_is_resampled(tiny_models):
    engine = MusicGenerationEngine(backend="musicgen", model_path=tiny_models["stereo24k"], sample_rate=32000)
    audio, _ = engine.generate_audio("dark techno", duration=0.5, seed=2)
    assert tuple(audio.shape) == (2, 16000) and not np.array_equal(audio[0].numpy(), audio[1].numpy())
    info = engine.get_info()
    assert (info["model_channels"], info["model_sample_rate"], info["frame_rate"]) == (2, 24000, 38)
    raw = engine._backend.generate("dark techno", 0.5, 2, 32000)
    frames = math.ceil(0.5 * 38)
    assert raw.shape == (2, math.ceil(frames * HOP * 32000 / 24000))  # polyphase: 4/3 of the model's samples


@needs_transformers
def test_settings_select_musicgen_and_its_folder(monkeypatch, tiny_models):
    monkeypatch.setenv("DGX_MUSIC_BACKEND", "musicgen")
    monkeypatch.setenv("DGX_MUSIC_MODEL_PATH", tiny_models["mono"])
    engine = MusicGenerationEngine()
    assert engine.backend == "musicgen" and engine.get_info()["model_path"] == tiny_models["mono"]


@needs_transformers
def test_model_path_may_be_a_path_object(tiny_models):
    import pathlib

    engine = MusicGenerationEngine(backend="musicgen", model_path=pathlib.Path(tiny_models["mono"]))
    assert engine.get_info()["model_path"] == tiny_models["mono"]


@needs_transformers
def test_hub_is_offline_after_loading(monkeypatch, tiny_models):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    MusicGenerationEngine(backend="musicgen", model_path=tiny_models["mono"])
    assert os.environ["HF_HUB_OFFLINE"] == "1"


@needs_transformers
@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"duration": 30.001}, ValueError),
        ({"duration": 0.0}, ValueError),
        ({"prompt": " "}, ValueError),
        ({"seed": -3}, ValueError),
        ({"duration": "1"}, TypeError),
    ],
)
def test_invalid_requests(mono_engine, kwargs, error):
    with pytest.raises(error):
        mono_engine.generate_audio(**{"prompt": "techno", "duration": 0.2, "seed": 0, **kwargs})


@needs_transformers
def test_missing_models_say_what_to_do(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="not found"):
        MusicGenerationEngine(backend="musicgen", model_path=str(tmp_path / "absent"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotAvailableError, match="never downloaded"):
        MusicGenerationEngine(backend="musicgen", model_path=str(empty))
    with pytest.raises(ModelNotAvailableError, match="never downloaded"):  # an id absent from the cache
        MusicGenerationEngine(backend="musicgen", model_path="dgx-music-tests/no-such-model")


@needs_transformers
def test_a_folder_with_another_model_is_refused(tmp_path):
    from transformers import T5Config

    T5Config(d_model=8, num_layers=1, num_heads=1).save_pretrained(tmp_path)
    with pytest.raises(ModelNotAvailableError, match="'t5' model, not MusicGen"):
        MusicGenerationEngine(backend="musicgen", model_path=str(tmp_path))


@needs_transformers
@pytest.mark.parametrize(
    "guidance, error", [(0.5, GenerationRequestError), (float("nan"), GenerationRequestError), ("3", TypeError)]
)
def test_invalid_guidance_scale(tiny_models, guidance, error):
    with pytest.raises(error):
        MusicGenerationEngine(backend="musicgen", model_path=tiny_models["mono"], guidance_scale=guidance)


def test_missing_transformers_names_the_extra(monkeypatch):
    monkeypatch.delenv("DGX_MUSIC_MODEL_PATH", raising=False)
    monkeypatch.setitem(sys.modules, "transformers", None)  # makes `import transformers` fail
    with pytest.raises(ModelNotAvailableError, match=r"pip install 'dgx-music\[musicgen\]'"):
        MusicGenerationEngine(backend="musicgen", model_path=None)
