"""What the tests' fake HTTP endpoints (the Kaggle API, served on 127.0.0.1) send back."""
import json


def send_json(handler, reply) -> None:
    """`reply` as a 200 JSON response of a BaseHTTPRequestHandler."""
    data = json.dumps(reply).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def send_not_found(handler) -> None:
    handler.send_response(404)
    handler.end_headers()
