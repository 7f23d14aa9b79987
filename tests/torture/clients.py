#!/usr/bin/env python3
"""Hostile clients of a gcshim control socket, for the torture test.

    clients.py MODE DIR

says it is up by creating DIR/MODE.ready, waits for DIR/pid, then talks
to DIR/sock/PID.sock until the process PID is gone:

silent   connects, asks for listings and never reads the replies
garbage  sends random bytes in random pieces (partial lines, NUL bytes,
         invalid UTF-8, lines too long) and reads every reply
hangup   asks for a long reply and disconnects in the middle of it

Prints one line of counts.  Exits 1 when a reply is not one JSON object
with "ok", or when the server neither answers nor closes within 30 s."""
import json
import os
import random
import socket
import sys
import time

TIMEOUT = 30


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(path)
    return s


def check_line(line, counts):
    try:
        reply = json.loads(line)
    except ValueError:
        sys.exit(f"not JSON: {line[:200]!r}")
    if not isinstance(reply, dict) or "ok" not in reply:
        sys.exit(f"no ok member: {line[:200]!r}")
    counts["replies"] += 1
    if not reply["ok"]:
        counts["errors"] += 1
        if reply.get("error") == "too many clients":
            counts["refused"] += 1


def read_lines(s, counts, buf):
    """Reads what is there; False once the server closed."""
    try:
        data = s.recv(65536)
    except socket.timeout:
        sys.exit(f"no reply and no close within {TIMEOUT} s")
    except ConnectionResetError:
        return False
    if not data:
        return False
    buf += data
    while b"\n" in buf:
        line, _, rest = buf.partition(b"\n")
        buf[:] = rest
        check_line(line, counts)
    return True


def garbage_piece(rng):
    kind = rng.randrange(6)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    if kind == 1:
        return b"x" * rng.randrange(1000, 3000)
    if kind == 2:
        return rng.choice([b"stats", b"get-objects", b"collect", b"is-tracked 0x",
                           b"get-referrers 0x1000,", b"threshold 9999999999999G",
                           b"set-debug 255", b"\xc3\x28", b"\x00\x00", b"garbage 0"])
    if kind == 3:
        return b"\n"
    if kind == 4:
        return b"hello 1\n"
    return b"\r\n"


def send_garbage(s, deadline, counts, rng, buf):
    """False once the server closed."""
    while time.monotonic() < deadline:
        piece = garbage_piece(rng)
        step = rng.randrange(1, 8)
        for i in range(0, len(piece), step):
            s.sendall(piece[i:i + step])
        s.setblocking(False)
        try:
            alive = read_lines(s, counts, buf)
        except BlockingIOError:
            alive = True
        s.settimeout(TIMEOUT)
        if not alive:
            return False
    # the end of what we send: every request so far gets its reply
    s.shutdown(socket.SHUT_WR)
    return True


def garbage(path, deadline, counts, rng):
    s = connect(path)
    counts["connections"] += 1
    buf = bytearray()
    try:
        send_garbage(s, deadline, counts, rng, buf)
    except (BrokenPipeError, ConnectionResetError):
        pass    # it closed on us: what it said before is still to be read
    try:
        while read_lines(s, counts, buf):
            pass
    finally:
        s.close()


def silent(path, deadline, counts, rng):
    s = connect(path)
    counts["connections"] += 1
    s.settimeout(1)
    try:
        s.sendall(b"hello 1\n")
        while time.monotonic() < deadline:
            s.sendall(b"get-objects\nstats\n")
    except (BrokenPipeError, ConnectionResetError):
        counts["cut_off"] += 1
    except socket.timeout:
        # the server stopped reading from us: wait to be cut off
        s.settimeout(TIMEOUT)
        try:
            while s.recv(1 << 20):
                pass
            counts["cut_off"] += 1
        except ConnectionResetError:
            counts["cut_off"] += 1
        except socket.timeout:
            sys.exit(f"a client that never reads was not cut off within {TIMEOUT} s")
    finally:
        s.close()


def hangup(path, deadline, counts, rng):
    s = connect(path)
    counts["connections"] += 1
    try:
        s.sendall(b"hello 1\n")
        s.sendall(rng.choice([b"get-objects\n", b"stats\n", b"leaks\n",
                              b"get-objects --summary\n"]))
        s.recv(rng.randrange(1, 200))
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        s.close()


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def main():
    mode, work = sys.argv[1], sys.argv[2]
    open(os.path.join(work, mode + ".ready"), "w").close()
    for _ in range(1200):
        if os.path.exists(os.path.join(work, "pid")):
            break
        time.sleep(0.1)
    with open(os.path.join(work, "pid")) as f:
        pid = int(f.read())
    path = os.path.join(work, "sock", f"{pid}.sock")
    run = {"silent": silent, "garbage": garbage, "hangup": hangup}[mode]
    rng = random.Random(os.getpid())
    counts = {"connections": 0, "replies": 0, "errors": 0, "refused": 0, "cut_off": 0,
              "backlog_full": 0}
    for _ in range(600):    # the socket appears once the process is up
        if os.path.exists(path) or not alive(pid):
            break
        time.sleep(0.1)
    while alive(pid):
        # a client ends its connection within a second of its own
        deadline = time.monotonic() + rng.uniform(0.1, 1)
        try:
            run(path, deadline, counts, rng)
        except (ConnectionRefusedError, FileNotFoundError):
            counts["refused"] += 1    # the process is ending
        except BlockingIOError:
            # the backlog is full (connections queue while a collection
            # holds the control thread), and a connect() with a timeout,
            # non-blocking underneath, fails with EAGAIN instead of waiting
            counts["backlog_full"] += 1
        time.sleep(0.01)
    print(f"{mode}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
