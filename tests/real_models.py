"""Real architectures for tests/test_real_architectures.py and benchmarks/graph_scale.py:
transformers models from tiny configs and torchvision models at small sizes (random weights,
nothing downloaded). Each entry renders a small user file with an explicit
``nnlint_examples()`` (the convention of fixtures/), the way a user would write it."""

from __future__ import annotations

import re
import textwrap

#: shared tiny sizes
_ENC = "hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37"
_DEC = "hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48"

_IDS = '{"input_ids": torch.randint(0, 99, (2, 16)), "attention_mask": torch.ones(2, 16, dtype=torch.long)}'
_IDS_ONLY = '{"input_ids": torch.randint(0, 99, (2, 16))}'
_PIXELS = '{"pixel_values": torch.randn(2, 3, 32, 32)}'
_S2S = ('{"input_ids": torch.randint(0, 99, (2, 12)), "attention_mask": torch.ones(2, 12, dtype=torch.long), '
        '"decoder_input_ids": torch.randint(0, 99, (2, 8))}')

#: id -> (family, config class, config kwargs, model class, inputs expression, use_cache)
TRANSFORMERS: dict[str, tuple[str, str, str, str, str]] = {
    # encoders
    "bert": ("encoder", "BertConfig", f"vocab_size=99, {_ENC}, max_position_embeddings=64",
             "BertForSequenceClassification", _IDS),
    "roberta": ("encoder", "RobertaConfig", f"vocab_size=99, {_ENC}, max_position_embeddings=64",
                "RobertaForSequenceClassification", _IDS),
    "albert": ("encoder", "AlbertConfig", f"vocab_size=99, embedding_size=16, {_ENC}, max_position_embeddings=64",
               "AlbertForSequenceClassification", _IDS),
    "distilbert": ("encoder", "DistilBertConfig",
                   "vocab_size=99, dim=32, n_layers=2, n_heads=2, hidden_dim=37, max_position_embeddings=64",
                   "DistilBertForSequenceClassification", _IDS),
    "electra": ("encoder", "ElectraConfig", f"vocab_size=99, embedding_size=16, {_ENC}, max_position_embeddings=64",
                "ElectraForSequenceClassification", _IDS),
    "deberta_v2": ("encoder", "DebertaV2Config", f"vocab_size=99, {_ENC}, max_position_embeddings=64",
                   "DebertaV2ForSequenceClassification", _IDS),
    "mpnet": ("encoder", "MPNetConfig", f"vocab_size=99, {_ENC}, max_position_embeddings=64",
              "MPNetForSequenceClassification", _IDS),
    # decoders
    "gpt2": ("decoder", "GPT2Config", "vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, "
             "bos_token_id=1, eos_token_id=2",
             "GPT2LMHeadModel", _IDS_ONLY),
    "llama": ("decoder", "LlamaConfig", f"vocab_size=99, {_DEC}, num_key_value_heads=2, max_position_embeddings=64",
              "LlamaForCausalLM", _IDS_ONLY),
    "mistral": ("decoder", "MistralConfig", f"vocab_size=99, {_DEC}, num_key_value_heads=2, "
                "max_position_embeddings=64", "MistralForCausalLM", _IDS_ONLY),
    "qwen2": ("decoder", "Qwen2Config", f"vocab_size=99, {_DEC}, num_key_value_heads=2, max_position_embeddings=64",
              "Qwen2ForCausalLM", _IDS_ONLY),
    "gpt_neox": ("decoder", "GPTNeoXConfig", f"vocab_size=99, {_DEC}, max_position_embeddings=64",
                 "GPTNeoXForCausalLM", _IDS_ONLY),
    "opt": ("decoder", "OPTConfig", "vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, "
            "ffn_dim=48, word_embed_proj_dim=32, max_position_embeddings=64", "OPTForCausalLM", _IDS_ONLY),
    "falcon": ("decoder", "FalconConfig", "vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4",
               "FalconForCausalLM", _IDS_ONLY),
    "phi": ("decoder", "PhiConfig", f"vocab_size=99, {_DEC}, max_position_embeddings=64", "PhiForCausalLM",
            _IDS_ONLY),
    # encoder-decoders
    "t5": ("encoder-decoder", "T5Config", "vocab_size=99, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4",
           "T5ForConditionalGeneration", _S2S),
    "bart": ("encoder-decoder", "BartConfig", "vocab_size=99, d_model=32, encoder_layers=2, decoder_layers=2, "
             "encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=48, decoder_ffn_dim=48, "
             "max_position_embeddings=64", "BartForConditionalGeneration", _S2S),
    # vision
    "vit": ("vision", "ViTConfig", f"image_size=32, patch_size=8, {_ENC}, num_labels=10",
            "ViTForImageClassification", _PIXELS),
    "deit": ("vision", "DeiTConfig", f"image_size=32, patch_size=8, {_ENC}, num_labels=10",
             "DeiTForImageClassification", _PIXELS),
    "convnext": ("vision", "ConvNextConfig", "hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_labels=10",
                 "ConvNextForImageClassification", _PIXELS),
    "resnet_hf": ("vision", "ResNetConfig", "embedding_size=8, hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], "
                  "num_labels=10", "ResNetForImageClassification", _PIXELS),
    "swin": ("vision", "SwinConfig", "image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2], "
             "window_size=4, num_labels=10", "SwinForImageClassification", _PIXELS),
    "mobilenet_v2_hf": ("vision", "MobileNetV2Config", "image_size=32, depth_multiplier=0.25, num_labels=10",
                        "MobileNetV2ForImageClassification", _PIXELS),
    "segformer": ("vision", "SegformerConfig", "num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], "
                  "hidden_sizes=[8, 16], num_attention_heads=[1, 2], decoder_hidden_size=16, num_labels=4",
                  "SegformerForSemanticSegmentation", _PIXELS),
    "clip_vision": ("vision", "CLIPVisionConfig", f"image_size=32, patch_size=8, {_ENC}", "CLIPVisionModel",
                    _PIXELS),
    # audio
    "wav2vec2": ("audio", "Wav2Vec2Config", f"{_ENC}, conv_dim=[16, 16], conv_stride=[5, 4], conv_kernel=[10, 8], "
                 "num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, num_labels=4",
                 "Wav2Vec2ForSequenceClassification", '{"input_values": torch.randn(2, 1600)}'),
    "whisper": ("audio", "WhisperConfig", "vocab_size=99, d_model=32, encoder_layers=2, decoder_layers=2, "
                "encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=48, decoder_ffn_dim=48, "
                "num_mel_bins=16, max_source_positions=32, max_target_positions=32, pad_token_id=1, bos_token_id=2, "
                "eos_token_id=2, decoder_start_token_id=2",
                "WhisperForConditionalGeneration",
                '{"input_features": torch.randn(2, 16, 64), "decoder_input_ids": torch.randint(0, 99, (2, 8))}'),
}

#: id -> (constructor expression, input expression)
TORCHVISION: dict[str, tuple[str, str]] = {
    "resnet18": ("models.resnet18(num_classes=10)", "torch.randn(2, 3, 64, 64)"),
    "resnet50": ("models.resnet50(num_classes=10)", "torch.randn(2, 3, 64, 64)"),
    "mobilenet_v2": ("models.mobilenet_v2(num_classes=10, width_mult=0.25)", "torch.randn(2, 3, 64, 64)"),
    "mobilenet_v3_small": ("models.mobilenet_v3_small(num_classes=10)", "torch.randn(2, 3, 64, 64)"),
    # torchvision sizes these two classifiers' init for 1000 classes (at 10 they start far from
    # chance, a true NN301: tests/test_real_architectures.py checks it), so they keep the default
    "efficientnet_b0": ("models.efficientnet_b0()", "torch.randn(2, 3, 64, 64)"),
    "squeezenet": ("models.squeezenet1_1(num_classes=10)", "torch.randn(2, 3, 64, 64)"),
    "shufflenet": ("models.shufflenet_v2_x0_5(num_classes=10)", "torch.randn(2, 3, 64, 64)"),
    "mnasnet": ("models.mnasnet0_5()", "torch.randn(2, 3, 64, 64)"),
    "regnet": ("models.regnet_y_400mf(num_classes=10)", "torch.randn(2, 3, 64, 64)"),
    "densenet": ("models.DenseNet(growth_rate=8, block_config=(2, 2, 2, 2), num_init_features=16, num_classes=10)",
                 "torch.randn(2, 3, 64, 64)"),
    "vit": ("models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, "
            "mlp_dim=64, num_classes=10)", "torch.randn(2, 3, 32, 32)"),
    "convnext": ("models.convnext.ConvNeXt([models.convnext.CNBlockConfig(16, 32, 1), "
                 "models.convnext.CNBlockConfig(32, None, 1)], num_classes=10)", "torch.randn(2, 3, 64, 64)"),
}


def transformers_source(arch: str) -> str:
    family, cfg_cls, cfg_kwargs, model_cls, inputs = TRANSFORMERS[arch]
    return textwrap.dedent(f'''\
        """A {family} model from transformers, built from a tiny config."""
        import torch
        from transformers import {cfg_cls}, {model_cls}

        config = {cfg_cls}({cfg_kwargs})


        def nnlint_examples():
            torch.manual_seed(0)
            model = {model_cls}(config)
            return [{{"model": model, "inputs": {inputs}}}]
        ''')


def torchvision_source(arch: str, ctor: str | None = None) -> str:
    default, inputs = TORCHVISION[arch]
    ctor = ctor or default
    found = re.search(r"num_classes=(\d+)", ctor)
    classes = int(found.group(1)) if found else 1000
    return textwrap.dedent(f'''\
        """A torchvision model at a small size."""
        import torch
        from torchvision import models


        def nnlint_examples():
            torch.manual_seed(0)
            return [{{"model": {ctor}, "inputs": {inputs}, "classes": {classes}}}]
        ''')
