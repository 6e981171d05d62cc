"""Loads a `skill-fleet program export` file with DSPy's own `Module.load`,
reports what DSPy loaded, and saves it again with DSPy's `Module.save`.

Usage: python tests/dspy_roundtrip.py EXPORTED.json LOADED.json SAVED.json

Called by tests/it/dspy_roundtrip.rs with the interpreter of the venv that
scripts/dspy_venv.sh creates (dspy==3.4.1). No language model is called:
loading and saving a program's state is offline.

The DSPy program is built the way a DSPy user would write it: one attribute
per predictor, a `dspy.Predict` or `dspy.ChainOfThought` with a string
signature "inputs -> outputs". The field names and the input/output split are
read from the export (the `name` of each signature field and the
`x-skill-fleet` block), since DSPy's own keys do not say which fields are inputs.

LOADED.json holds, per predictor name as DSPy names it (`named_predictors`),
the instructions, fields (prefix, description) and demos read back from the
loaded DSPy objects, plus every warning DSPy logged while loading.
"""

import json
import logging
import sys

import dspy


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(f"{record.name}: {record.getMessage()}")


def build(exported):
    meta = exported["x-skill-fleet"]["predictors"]
    program = dspy.Module()
    for key, state in exported.items():
        if key in ("metadata", "x-skill-fleet"):
            continue
        name = key.removesuffix(".predict")
        fields = [f["name"] for f in state["signature"]["fields"] if f["name"] != "reasoning"]
        inputs = meta[name]["inputs"]
        outputs = [f for f in fields if f not in inputs]
        signature = f"{', '.join(inputs)} -> {', '.join(outputs)}"
        if meta[name]["module"] == "chain_of_thought":
            setattr(program, name, dspy.ChainOfThought(signature))
        else:
            setattr(program, name, dspy.Predict(signature))
    return program


def main():
    exported_path, loaded_path, saved_path = sys.argv[1:4]
    with open(exported_path) as f:
        exported = json.load(f)
    program = build(exported)

    # DSPy's loggers do not propagate to the root logger: listen on both.
    collect = Collect()
    loggers = [logging.getLogger(), logging.getLogger("dspy")]
    for logger in loggers:
        logger.addHandler(collect)
    program.load(exported_path)
    for logger in loggers:
        logger.removeHandler(collect)

    loaded = {"warnings": collect.messages, "predictors": {}}
    for name, predictor in program.named_predictors():
        sig = predictor.signature
        loaded["predictors"][name] = {
            "instructions": sig.instructions,
            "fields": [
                {"prefix": field.json_schema_extra["prefix"], "description": field.json_schema_extra["desc"]}
                for field in sig.fields.values()
            ],
            "demos": [dict(d) for d in predictor.demos],
        }
    with open(loaded_path, "w") as f:
        json.dump(loaded, f, indent=2)
    program.save(saved_path)


if __name__ == "__main__":
    main()
