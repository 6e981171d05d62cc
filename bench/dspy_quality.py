"""DSPy side of the optimization-quality comparison (bench/quality_vs_dspy.sh).

Rebuilds the bundled program (config/programs/skill_understanding.yaml) as a
DSPy program: one `dspy.Predict` over a signature with the same instructions,
fields, types (Literal, list[Literal], list[str]) and descriptions, wrapped so
that a parse failure returns the spec's configured fallback answer, as our
runtime does. It talks to the same llama-server our side uses, in text-completion
mode (`model_type="text"`, `--mode completion`) or on its chat endpoint with
DSPy's default ChatAdapter (`--mode chat`), and optimizes on the split our
side made for the same seed (read from our database).

The metric inside DSPy's optimizers is a Python port of `skill_comprehensive`
(src/metrics/skill.rs); the reported test scores do not depend on the port:
the test predictions are written to JSONL and scored by `skill-fleet metrics
score`, the same Rust metric our side is scored with. The harness also checks
that the port agrees with the Rust metric on every test prediction, score and
feedback text (GEPA reflects on the feedback).

`--optimizer knn` is DSPy's KNNFewShot (k=4, like ours) with a lexical
retriever comparable to our `--retriever bm25`: `BM25Vectorizer` below, Okapi
BM25 (k1=1.2, b=0.75) over the task description, written as a dot product of
a BM25-weighted train vector and the query's term counts, which is how DSPy's
KNN ranks (`np.dot(train_vectors, query_vector)`). KNNFewShot runs
BootstrapFewShot on each input's neighbours (DSPy's design), here with the
same settings as our BootstrapFewShot; `knn-labeled` gives it no bootstrapped
demos (`max_bootstrapped_demos=0`), i.e. the 4 neighbours' gold answers as
demos, which is what our knn optimizer does.

Usage: python bench/dspy_quality.py --optimizer bootstrap|miprov2|gepa|knn|knn-labeled --seed S
           --split split.json --port 8080 --out result.json
           --cache-dir DIR --predictions-dir DIR [--threads 4] [--trainset FILE]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Literal

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "config/programs/skill_understanding.yaml")
TAXONOMY = os.path.join(ROOT, "config/taxonomy.yaml")
TRAINSET = os.path.join(ROOT, "config/training/trainset.json")


def text_of(d, field):
    """src/metrics/mod.rs text_of."""
    v = d.get(field)
    if v is None:
        return ""
    if isinstance(v, str):
        return v.strip()
    if isinstance(v, list):
        return ", ".join(x if isinstance(x, str) else json.dumps(x) for x in v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v)


def is_kebab_case(s):
    return bool(s) and all(w and all(c.isascii() and (c.islower() or c.isdigit()) for c in w) for w in s.split("-"))


# Each part of `skill_comprehensive` returns (score, feedback), as the Rust
# metrics do; GEPA reflects on the feedback.


def taxonomy_accuracy(gold, pred):
    g, p = text_of(gold, "taxonomy_path").lower(), text_of(pred, "taxonomy_path").lower()
    cat = lambda s: s.split("/")[0].strip()
    if g and g == p:
        return 1.0, f"path `{p}` is exact"
    if cat(g) and cat(g) == cat(p):
        return 0.7, f"category `{cat(p)}` is right but path `{p}` should be `{g}`"
    return 0.0, f"path `{p}` is in the wrong category; expected `{g}`"


def metadata_quality(pred):
    score, notes = 0.0, []
    name = text_of(pred, "name")
    if is_kebab_case(name):
        score += 0.25
    else:
        notes.append(f"name `{name}` is not kebab-case")
    desc = text_of(pred, "description")
    if desc.startswith("Use when"):
        score += 0.25
    else:
        notes.append('description does not start with "Use when"')
    words = len(desc.split())
    if 10 <= words <= 40:
        score += 0.15
    else:
        notes.append(f"description has {words} words (want 10-40)")
    kws = pred.get("keywords")
    raw = [k if isinstance(k, str) else "" for k in kws] if isinstance(kws, list) else []
    if 3 <= len(raw) <= 7:
        score += 0.20
    else:
        notes.append(f"{len(raw)} keywords (want 3-7)")
    if raw and all(not any(c.isupper() for c in k) for k in raw):
        score += 0.15
    else:
        notes.append("keywords are not all lowercase")
    return score, "; ".join(notes) if notes else "metadata is well-formed"


def skill_style_alignment(gold, pred):
    g, p = text_of(gold, "skill_style"), text_of(pred, "skill_style")
    return (1.0, f"style `{p}` is right") if g == p else (0.0, f"style `{p}` should be `{g}`")


def skill_parts(gold, pred):
    return [
        ("taxonomy_accuracy", 0.4, taxonomy_accuracy(gold, pred)),
        ("metadata_quality", 0.3, metadata_quality(pred)),
        ("skill_style_alignment", 0.3, skill_style_alignment(gold, pred)),
    ]


def skill_comprehensive(gold, pred):
    return sum(w * score for _, w, (score, _) in skill_parts(gold, pred))


def skill_feedback(gold, pred):
    """The feedback text our composite metric gives GEPA's reflection
    (Composite in src/metrics/mod.rs), so both sides reflect on the same words."""
    return "\n".join(f"{name} ({score:.2f}): {fb}" for name, _, (score, fb) in skill_parts(gold, pred))


class BM25Vectorizer:
    """A callable for `dspy.Embedder` that makes DSPy's KNN rank by Okapi BM25.

    DSPy's KNN embeds the trainset once (the first call) and then each query,
    and scores a train example by the dot product of the two vectors. The first
    call here fits BM25 on the train texts and returns, per example, the BM25
    weight of each term, idf(t) * tf(t)(k1+1) / (tf(t) + k1(1 - b + b|d|/avgdl));
    later calls return each query's term counts, so the dot product is the BM25
    score of the query against that example. Only the task description is
    indexed: DSPy's KNN text also holds the categories input, which is the same
    constant on every example (BM25 gives its terms no weight on our side
    either). Tokens: scikit-learn's word pattern, lowercased, its English stop
    words; our side (the `bm25` crate) also stems, this does not.
    """

    def __init__(self, k1=1.2, b=0.75):
        self.k1, self.b = k1, b
        self.vocab = None

    @staticmethod
    def field(text):
        # DSPy joins inputs as "key: value | key: value".
        for part in text.split(" | "):
            if part.startswith("task_description: "):
                return part[len("task_description: "):]
        return text

    def __call__(self, texts):
        import numpy as np
        from sklearn.feature_extraction.text import CountVectorizer

        texts = [self.field(t) for t in texts]
        if self.vocab is None:
            self.cv = CountVectorizer(lowercase=True, stop_words="english")
            tf = self.cv.fit_transform(texts).toarray().astype(np.float64)
            self.vocab = self.cv.vocabulary_
            n, df = tf.shape[0], (tf > 0).sum(axis=0)
            idf = np.log((n - df + 0.5) / (df + 0.5) + 1.0)
            dl = tf.sum(axis=1, keepdims=True)
            avgdl = dl.mean() if n else 1.0
            w = tf * (self.k1 + 1) / (tf + self.k1 * (1 - self.b + self.b * dl / avgdl))
            return (w * idf).astype(np.float32)
        return self.cv.transform(texts).toarray().astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--optimizer", required=True, choices=["bootstrap", "miprov2", "gepa", "knn", "knn-labeled"])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--split", required=True, help="JSON {train: [idx], val: [idx], test: [idx]}")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache-dir", required=True)
    ap.add_argument("--predictions-dir", required=True)
    ap.add_argument("--db", required=True, help="our database holding the trainset `skills` (for metrics score)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/debug/skill-fleet"))
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--mode", choices=["completion", "chat"], default="completion",
                    help="llama-server endpoint: text completion (model_type=text) or chat (model_type=chat)")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--json-adapter-fallback", action="store_true",
                    help="text-completion mode: keep the ChatAdapter's JSONAdapter fallback (DSPy's default)")
    ap.add_argument("--prompt-max-tokens", type=int, default=160,
                    help="MIPROv2's proposer LM (prompt_model): new tokens per call; 160 is our prompt role's limit, "
                         "more is what DSPy's 'LM response was truncated; increase max_tokens' warning asks for")
    ap.add_argument("--trainset", default=TRAINSET, help="the trainset file our side imported (split indexes refer to it)")
    ap.add_argument("--max-metric-calls", type=int, help="GEPA budget instead of auto=light (for smoke tests)")
    ap.add_argument(
        "--no-stop",
        action="store_true",
        help="send no stop sequence (DSPy's default; every call then runs to --max-tokens on the base model)",
    )
    a = ap.parse_args()

    os.environ.setdefault("DSPY_CACHEDIR", a.cache_dir)
    # Offline: LiteLLM otherwise tries to download its price table at import.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import dspy

    dspy.configure_cache(enable_disk_cache=True, enable_memory_cache=True, disk_cache_dir=a.cache_dir)

    spec = yaml.safe_load(open(SPEC))
    pred_spec = spec["predictors"][0]
    sig_spec = pred_spec["signature"]
    categories = ", ".join(c["name"] for c in yaml.safe_load(open(TAXONOMY))["categories"])
    field_map = spec["field_map"]
    fallback = pred_spec["fallback"]

    def py_type(t):
        t = t.strip()
        if t.startswith("Literal["):
            return Literal[tuple(x.strip() for x in t[len("Literal["):-1].split(","))]
        if t.startswith("list["):
            return list[py_type(t[len("list["):-1])]
        return {"str": str, "int": int, "float": float, "bool": bool}[t]

    def desc(f):
        parts = [f.get("description", "")] + [str(c) for c in f.get("constraints", [])]
        return "; ".join(p for p in parts if p) or None

    fields = {}
    for f in sig_spec["inputs"]:
        fields[f["name"]] = (py_type(f["type"]), dspy.InputField(desc=desc(f)) if desc(f) else dspy.InputField())
    for f in sig_spec["outputs"]:
        fields[f["name"]] = (py_type(f["type"]), dspy.OutputField(desc=desc(f)) if desc(f) else dspy.OutputField())
    Signature = dspy.make_signature(fields, sig_spec["instructions"].strip())
    out_names = [f["name"] for f in sig_spec["outputs"]]

    class SkillUnderstanding(dspy.Module):
        def __init__(self, fallback=True):
            super().__init__()
            self.understand = dspy.Predict(Signature)
            self.failures = 0
            self.fallback = fallback

        def forward(self, categories, task_description):
            if not self.fallback:
                return self.understand(categories=categories, task_description=task_description)
            try:
                return self.understand(categories=categories, task_description=task_description)
            except Exception:
                # Our runtime answers with the spec's fallback when parsing fails.
                return dspy.Prediction(**fallback, used_fallback=True)

    rows = json.load(open(a.trainset))
    split = json.load(open(a.split))

    def example(idx):
        r = rows[idx]
        gold = {dst: r[src] for src, dst in field_map.items()}
        return dspy.Example(categories=categories, task_description=r["task_description"], idx=idx, **gold).with_inputs(
            "categories", "task_description"
        )

    train = [example(i) for i in split["train"]]
    val = [example(i) for i in split["val"]]
    test = [example(i) for i in split["test"]]

    def as_dict(x):
        return {k: getattr(x, k, None) for k in out_names}

    def metric(gold, pred, trace=None):
        return skill_comprehensive(as_dict(gold), as_dict(pred))

    def gepa_metric(gold, pred, trace=None, pred_name=None, pred_trace=None):
        g, p = as_dict(gold), as_dict(pred)
        return dspy.Prediction(score=skill_comprehensive(g, p), feedback=skill_feedback(g, p))

    # ChatAdapter ends an answer with this marker; a base model otherwise keeps
    # writing to max_tokens. Our side stops after its last field the same way.
    # Fields the model writes only after the marker are lost with the stop
    # (docs/benchmarks.md, part D, measures both settings).
    stop = [] if a.no_stop else ["[[ ## completed ## ]]"]
    lm_kwargs = {"stop": stop} if stop else {}
    def server_lm(model_type=None, **kwargs):
        """The llama-server, in the run's mode (text completion or chat), cached on disk."""
        return dspy.LM(
            "openai/gemma-3-270m",
            api_base=f"http://127.0.0.1:{a.port}/v1",
            api_key="local",
            model_type=model_type or ("chat" if a.mode == "chat" else "text"),
            num_retries=3,
            cache=True,
            **kwargs,
        )

    lm = server_lm(temperature=0.0, max_tokens=a.max_tokens, **lm_kwargs)
    dspy.configure(lm=lm)
    # In text-completion mode the ChatAdapter's fallback to the JSONAdapter on a
    # parse failure can never work: LiteLLM's text-completion client refuses its
    # `response_format` before any request, and then retries that refusal
    # (num_retries) with backoff, about 10 s of sleep per failed parse, no
    # server call. A user who saw that turns the fallback off, as done here
    # (--json-adapter-fallback keeps DSPy's default). In chat mode the fallback
    # reaches the server and stays DSPy's default.
    json_fallback = a.mode == "chat" or a.json_adapter_fallback
    if not json_fallback:
        dspy.configure(adapter=dspy.ChatAdapter(use_json_adapter_fallback=False))

    def evaluate(program, devset, tag):
        ev = dspy.Evaluate(devset=devset, metric=metric, num_threads=a.threads, display_progress=False, provide_traceback=False)
        res = ev(program)
        path = os.path.join(a.predictions_dir, f"dspy-{a.optimizer}-{a.seed}-{tag}.jsonl")
        fallbacks = 0
        port_scores = {}
        port_feedback = {}
        with open(path, "w") as f:
            for ex, pred, score in res.results:
                d = as_dict(pred)
                d = {k: (v if isinstance(v, (str, list, int, float, bool)) or v is None else str(v)) for k, v in d.items()}
                fallbacks += bool(getattr(pred, "used_fallback", False))
                port_scores[ex.idx] = score
                port_feedback[ex.idx] = skill_feedback(as_dict(ex), d)
                f.write(json.dumps({"idx": ex.idx, "prediction": d}) + "\n")
        # Score with our Rust metric; check the Python port agrees.
        out = subprocess.run(
            [a.bin, "--db", a.db, "--json", "metrics", "score", "--trainset", "skills", path],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        scored = json.loads(out.stdout)
        for s in scored["scores"]:
            if abs(s["score"] - port_scores[s["idx"]]) > 1e-9:
                raise SystemExit(f"metric port disagrees on example {s['idx']}: rust {s['score']} python {port_scores[s['idx']]}")
            if s["feedback"] != port_feedback[s["idx"]]:
                raise SystemExit(f"feedback port disagrees on example {s['idx']}: rust {s['feedback']!r} python {port_feedback[s['idx']]!r}")
        return scored["mean"], fallbacks

    t0 = time.perf_counter()
    baseline = SkillUnderstanding()
    base_test, base_fallbacks = evaluate(baseline, test, "baseline-test")
    error = None
    optimized = baseline
    reflection_lm = None
    prompt_lm = None
    try:
        if a.optimizer == "bootstrap":
            opt = dspy.BootstrapFewShot(
                metric=metric, metric_threshold=0.9, max_bootstrapped_demos=4, max_labeled_demos=4, max_rounds=1
            )
            optimized = opt.compile(baseline, trainset=train)
        elif a.optimizer in ("knn", "knn-labeled"):
            # KNNFewShot(k=4) with the BM25 vectorizer above; per input it
            # bootstraps on the 4 neighbours with our BootstrapFewShot settings
            # (knn-labeled: no bootstrapping, the neighbours' gold answers).
            boot = 0 if a.optimizer == "knn-labeled" else 4
            opt = dspy.KNNFewShot(
                k=4, trainset=train, vectorizer=dspy.Embedder(BM25Vectorizer(), batch_size=100_000, caching=False),
                metric=metric, metric_threshold=0.9, max_bootstrapped_demos=boot, max_labeled_demos=4, max_rounds=1,
            )
            optimized = opt.compile(baseline)
        elif a.optimizer == "gepa":
            # Our reflection role's settings (config/config.yaml): sampled at
            # 0.7, up to 200 tokens; it answers in the ChatAdapter's format
            # (below), so it stops at the same marker as the task LM.
            reflection_lm = server_lm(temperature=0.7, max_tokens=200, **lm_kwargs)
            # Settings a DSPy user needs on a text-completion LM:
            # - GEPA learns from format failures only when it sees them: the
            #   program raises its parse errors during optimization (no fallback
            #   answer), the ChatAdapter does not hand them to its JSONAdapter
            #   (whose retry LiteLLM's text-completion client refuses before any
            #   request, so this changes nothing on the wire), and
            #   add_format_failure_as_feedback shows the failed text and the
            #   expected format to the reflection LM. Otherwise a minibatch that
            #   parses nowhere (every example, zero-shot) stops GEPA with "No
            #   valid predictions found for any module".
            # - GEPA's default instruction proposer asks through a JSONAdapter,
            #   i.e. with `response_format`, which that client refuses: every
            #   proposal would fail. It gets the ChatAdapter instead.
            from dspy.teleprompt.gepa import InstructionProposer

            chat = dspy.ChatAdapter(use_json_adapter_fallback=False)
            dspy.configure(adapter=chat)
            json_fallback = False  # as recorded below
            budget = {"max_metric_calls": a.max_metric_calls} if a.max_metric_calls else {"auto": "light"}
            opt = dspy.GEPA(
                metric=gepa_metric,
                **budget,
                instruction_proposer=InstructionProposer(adapter=chat),
                reflection_lm=reflection_lm,
                reflection_minibatch_size=3,
                use_merge=True,
                max_merge_invocations=5,
                add_format_failure_as_feedback=True,
                num_threads=a.threads,
                seed=a.seed,
            )
            optimized = opt.compile(SkillUnderstanding(fallback=False), trainset=train, valset=val)
            optimized.fallback = True  # tested like every other program
        else:
            # What a competent DSPy user gives MIPROv2 (and what our prompt
            # role has, config/config.yaml): a proposer LM on the chat
            # endpoint, sampled at 0.7, the same temperature as its first
            # proposals (init_temperature), and a ChatAdapter that does not
            # fall back to the JSONAdapter (whose response_format the server's
            # text-completion client refuses). With --json-adapter-fallback
            # (the dspy-jsonfb-miprov2 variant) the adapter stays DSPy's
            # default: on a parse failure the chat-mode proposer is asked
            # again for JSON. DSPy 3.4.1 sends this model no response_format
            # (LiteLLM lists none among its supported params), so nothing
            # holds the answer to the format but the prompt.
            prompt_lm = server_lm(model_type="chat", temperature=0.7, max_tokens=a.prompt_max_tokens)
            if not a.json_adapter_fallback:
                dspy.configure(adapter=dspy.ChatAdapter(use_json_adapter_fallback=False))
            json_fallback = a.json_adapter_fallback  # as recorded below
            opt = dspy.MIPROv2(
                metric=metric,
                prompt_model=prompt_lm,
                task_model=lm,
                init_temperature=0.7,
                auto="light",
                num_threads=a.threads,
                seed=a.seed,
                max_bootstrapped_demos=4,
                max_labeled_demos=4,
                metric_threshold=0.9,
                verbose=False,
            )
            # DSPy refuses a minibatch larger than the valset; ours then evaluates in full too.
            optimized = opt.compile(baseline, trainset=train, valset=val, minibatch=len(val) > 35)
    except Exception as e:  # recorded, and the baseline stands
        error = f"{type(e).__name__}: {e}"
    opt_test, opt_fallbacks = evaluate(optimized, test, "optimized-test") if error is None else (None, None)
    wall = time.perf_counter() - t0

    extra = [x for x in (reflection_lm, prompt_lm) if x is not None]
    hist = lm.history + [h for x in extra for h in x.history]
    provider = [h for h in hist if not getattr(h["response"], "cache_hit", False)]
    usage = lambda hs, k: sum(int((h.get("usage") or {}).get(k) or 0) for h in hs)
    demos = len(optimized.understand.demos) if error is None else None
    result = {
        "side": "dspy",
        "dspy_version": dspy.__version__,
        "optimizer": a.optimizer,
        "seed": a.seed,
        "n_train": len(train),
        "n_val": len(val),
        "n_test": len(test),
        "mode": a.mode,
        "max_tokens": a.max_tokens,
        "prompt_max_tokens": a.prompt_max_tokens if a.optimizer == "miprov2" else None,
        "stop": stop,
        "json_adapter_fallback": json_fallback,
        "baseline_test": base_test,
        "optimized_test": opt_test,
        "baseline_test_fallbacks": base_fallbacks,
        "optimized_test_fallbacks": opt_fallbacks,
        "demos": demos,
        "instructions": optimized.understand.signature.instructions if error is None else None,
        "lm_calls": len(hist),
        "provider_calls": len(provider),
        "prompt_tokens": usage(provider, "prompt_tokens"),
        "completion_tokens": usage(provider, "completion_tokens"),
        "wall_secs": wall,
        "error": error,
    }
    json.dump(result, open(a.out, "w"), indent=2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
