"""A tiny random-weight Llama model in GGUF, with a byte-level BPE tokenizer trained here.

Offline: the tokenizer learns from local text files (the licences under /usr/share/common-licenses
and this repository's docs), the weights are drawn from a seeded normal. Writes OUT.gguf and
OUT.tokenizer.json (the same tokenizer in Hugging Face's format, for pacer's --tokenizer), so
pacer's token counts and llama-server's are counts of the same tokenizer.

Usage: python llama_tiny_model.py OUT.gguf TEXT_FILE_OR_DIR...
"""

import os
import sys

import gguf
import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

VOCAB = 2048
N_EMBD = 64
N_LAYER = 2
N_HEAD = 4
N_FF = 128
N_CTX = 4096
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# ChatML, as most chat models of 2026 use: llama-server's /v1/chat/completions applies it.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def text_files(paths):
    for p in paths:
        if os.path.isdir(p):
            for d, _, names in sorted(os.walk(p)):
                for n in sorted(names):
                    yield os.path.join(d, n)
        elif os.path.isfile(p):
            yield p


def train_tokenizer(files):
    # GPT-2's byte-level BPE: the pre-tokenizer regex is the one llama.cpp calls "gpt-2".
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = []
    for f in files:
        try:
            with open(f, encoding="utf-8") as fh:
                texts.append(fh.read())
        except (UnicodeDecodeError, OSError):
            continue
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def main():
    out = sys.argv[1]
    tok = train_tokenizer(list(text_files(sys.argv[2:])))
    tok.save(out.removesuffix(".gguf") + ".tokenizer.json")
    vocab = tok.get_vocab()
    n_vocab = len(vocab)
    tokens = [""] * n_vocab
    for t, i in vocab.items():
        tokens[i] = t
    types = [
        gguf.TokenType.CONTROL if t in SPECIAL else gguf.TokenType.NORMAL for t in tokens
    ]
    import json

    merges = json.loads(tok.to_str())["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]

    w = gguf.GGUFWriter(out, "llama")
    w.add_name("pacer-tiny-llama")
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    eos = vocab["<|endoftext|>"]
    w.add_bos_token_id(eos)
    w.add_eos_token_id(eos)
    w.add_eot_token_id(vocab["<|im_end|>"])
    # No BOS: the server's prompt_tokens is then the tokenizer's count, nothing added.
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    rng = np.random.default_rng(20)

    def t(name, *shape, scale=0.02):
        # numpy shape is reversed from GGUF's (ne0 = last numpy axis).
        w.add_tensor(name, (rng.standard_normal(shape) * scale).astype(np.float32))

    def ones(name, n):
        w.add_tensor(name, np.ones(n, dtype=np.float32))

    t("token_embd.weight", n_vocab, N_EMBD)
    ones("output_norm.weight", N_EMBD)
    # Large output weights: sharp random logits, so sampling is not uniform over the vocabulary.
    t("output.weight", n_vocab, N_EMBD, scale=1.0)
    for i in range(N_LAYER):
        ones(f"blk.{i}.attn_norm.weight", N_EMBD)
        t(f"blk.{i}.attn_q.weight", N_EMBD, N_EMBD)
        t(f"blk.{i}.attn_k.weight", N_EMBD, N_EMBD)
        t(f"blk.{i}.attn_v.weight", N_EMBD, N_EMBD)
        t(f"blk.{i}.attn_output.weight", N_EMBD, N_EMBD)
        ones(f"blk.{i}.ffn_norm.weight", N_EMBD)
        t(f"blk.{i}.ffn_gate.weight", N_FF, N_EMBD)
        t(f"blk.{i}.ffn_up.weight", N_FF, N_EMBD)
        t(f"blk.{i}.ffn_down.weight", N_EMBD, N_FF)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"{out}: vocab {n_vocab}, {N_LAYER} layers, {N_EMBD} dims", file=sys.stderr)


if __name__ == "__main__":
    main()
