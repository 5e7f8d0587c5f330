#!/usr/bin/python3
"""Renders every chat template of templates.json on every conversation of conversations.json
with Python's jinja2, exactly as Hugging Face transformers' apply_chat_template() does, and
writes the results the C tests compare wandler's own interpreter against.

transformers compiles chat templates in an ImmutableSandboxedEnvironment(trim_blocks=True,
lstrip_blocks=True) with the loopcontrols extension, replaces the tojson filter with
json.dumps(ensure_ascii=False, ...), adds the globals raise_exception() and strftime_now(), and
renders with messages, tools=None, documents=None, add_generation_prompt and the tokenizer's
special tokens (bos_token, eos_token; absent when the tokenizer has none). strftime_now() here
returns the fixed date of templates.json so that the outputs are reproducible.

Output, in --out (default: expected/ next to this script), one file per template x conversation:
  NAME__CONVERSATION.txt  the rendered text, byte for byte (UTF-8)
  NAME__CONVERSATION.err  "ExceptionType: message" when jinja2 raised an error

    /usr/bin/python3 tests/chat/render_expected.py [--out DIR] [--shared DIR]
"""
import argparse
import json
import os
import sys
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))


def make_environment(now):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(format):
        return now.strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def template_path(t, shared_dir):
    if t["dir"] == "builtin":
        return os.path.join(HERE, "builtin", t["file"])
    return os.path.join(shared_dir, "tokenizer", "chat_templates", t["file"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "expected"))
    ap.add_argument("--shared", default=os.environ.get("WANDLER_SHARED_DIR",
                                                       os.path.join(HERE, "..", "..", "..", "shared")))
    args = ap.parse_args()

    with open(os.path.join(HERE, "templates.json"), encoding="utf-8") as f:
        spec = json.load(f)
    with open(os.path.join(HERE, "conversations.json"), encoding="utf-8") as f:
        conversations = json.load(f)
    now = datetime.strptime(spec["date"], "%Y-%m-%d")
    env = make_environment(now)
    os.makedirs(args.out, exist_ok=True)

    count = 0
    for t in spec["templates"]:
        with open(template_path(t, args.shared), encoding="utf-8", newline="") as f:
            source = f.read()
        template = env.from_string(source)
        for conv_name, conv in conversations.items():
            kwargs = {"messages": conv["messages"], "tools": None, "documents": None,
                      "add_generation_prompt": conv["add_generation_prompt"]}
            for token in ("bos_token", "eos_token"):
                if t.get(token) is not None:
                    kwargs[token] = t[token]
            base = os.path.join(args.out, f"{t['name']}__{conv_name}")
            try:
                text, ext = template.render(**kwargs), ".txt"
            except Exception as e:  # the C interpreter must fail too
                text, ext = f"{type(e).__name__}: {e}", ".err"
            for stale in (".txt", ".err"):
                if stale != ext and os.path.exists(base + stale):
                    os.unlink(base + stale)
            with open(base + ext, "w", encoding="utf-8", newline="") as f:
                f.write(text)
            count += 1
    print(f"wrote {count} renderings to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
