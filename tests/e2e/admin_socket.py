"""A request on an engine's admin socket, as any HTTP client would make it
(stdlib only: also used by scripts that run inside a namespace, and by bench/)."""
import json
import socket


def request(sock_path, path="/v1/status", method="GET", timeout=5):
    """(status code, body) of one request."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: azlb\r\nContent-Length: 0\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def status(sock_path, timeout=5):
    """The engine's /v1/status, parsed."""
    return json.loads(request(sock_path, timeout=timeout)[1])
