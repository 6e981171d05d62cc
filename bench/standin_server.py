"""A stand-in for llama-server, for smoke tests of bench/quality_vs_dspy.sh only.

It answers llama-server's OpenAI-compatible routes (/health, /v1/completions,
/v1/chat/completions, /v1/embeddings) at once with a fixed, well-formed-looking
answer and made-up token counts, so the harness (cells, resume, summary) can be
exercised in seconds without building or running the model. Its scores mean
nothing: `STANDIN_SERVER=1` runs are marked as such in their config and summary.
It logs one line per request (route, whether a `grammar` field came with it).

Usage: python3 bench/standin_server.py --port PORT
"""

import argparse
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = (
    "Taxonomy Path: python/example-skill\nName: example-skill\nSkill Style: minimal\n"
    "Subdirectories: none\nKeywords: python, example, skill\n"
    "Description: Use when you need an example skill for testing the benchmark harness end to end quickly.\n"
)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def reply(self, obj, code=200):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/health"):
            return self.reply({"status": "ok"})
        if self.path.startswith("/v1/models"):
            return self.reply({"object": "list", "data": [{"id": "gemma-3-270m", "object": "model"}]})
        self.reply({"error": "not found"}, 404)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n) or b"{}")
        print(f"{time.strftime('%H:%M:%S')} {self.path} grammar={'grammar' in body}", flush=True)
        usage = {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140}
        now = int(time.time())
        if self.path.startswith("/v1/completions"):
            return self.reply({"id": "cmpl-standin", "object": "text_completion", "created": now, "model": "gemma-3-270m",
                               "choices": [{"index": 0, "text": ANSWER, "finish_reason": "stop", "logprobs": None}],
                               "usage": usage})
        if self.path.startswith("/v1/chat/completions"):
            return self.reply({"id": "chatcmpl-standin", "object": "chat.completion", "created": now, "model": "gemma-3-270m",
                               "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER},
                                            "finish_reason": "stop"}],
                               "usage": usage})
        if self.path.startswith("/v1/embeddings"):
            inputs = body.get("input")
            inputs = [inputs] if isinstance(inputs, str) else inputs or []
            data = [{"object": "embedding", "index": i, "embedding": [float(len(t) % 7), 1.0, float(len(t.split()) % 5)]}
                    for i, t in enumerate(inputs)]
            return self.reply({"object": "list", "data": data, "model": "gemma-3-270m", "usage": usage})
        self.reply({"error": "not found"}, 404)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    a = ap.parse_args()
    print(f"stand-in llama-server on {a.host}:{a.port}", file=sys.stderr, flush=True)
    ThreadingHTTPServer((a.host, a.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
