#!/usr/bin/env python3
"""Sends crafted sync datagrams to the hafw multicast group, for the
bad-input cluster test. Run inside the attacker's namespace:

    send_dgrams.py LOCAL_IP GROUP PORT KIND COUNT

KIND names one malformation (see KINDS) or "valid" (a well-formed frame
with one flow from sender id 3, to show the path from this namespace works).

    send_dgrams.py LOCAL_IP GROUP PORT stream RATE SECONDS

sends heartbeats of a made-up peer (id 3) numbered 1, 2, 3, ... at RATE per
second, so a receiver that does not read for a while counts the loss.
"""
import itertools
import os
import socket
import struct
import sys
import time

MAGIC = 0x48414657
VERSION = 2
EPOCH = 4242
# every datagram of this sender gets a new sequence number, also across
# runs of this script (a repeated number is a duplicate and dropped unread)
SEQ = itertools.count(int(time.time() * 1000) % (1 << 30))


def header(length, version=VERSION, mtype=1, sender=3, epoch=EPOCH, seq=None):
    return struct.pack("!IBBHIII", MAGIC, version, mtype, length, sender, epoch,
                       next(SEQ) if seq is None else seq)


def varint(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])


def field(num, wire, payload):
    if wire == 0:
        return varint(num << 3) + varint(payload)
    return varint((num << 3) | 2) + varint(len(payload)) + payload


def tuple_(src, dst, proto=6, sport=1234, dport=80):
    return (field(1, 2, src) + field(2, 2, dst) + field(3, 0, proto)
            + field(4, 0, sport) + field(5, 0, dport))


def frame_with_flow(flow):
    event = field(1, 0, 1) + field(2, 2, flow) + field(4, 0, int(time.time() * 1e6))  # EV_NEW
    return field(1, 2, event)


def valid_frame():
    return frame_with_flow(field(1, 2, tuple_(bytes([10, 99, 0, 1]), bytes([10, 99, 0, 2]))))


def bad_event_frame():
    # address of 5 bytes: protobuf-valid, model-invalid
    return frame_with_flow(field(1, 2, tuple_(b"\x0a\x00\x00\x01\x02", b"\x0a\x00\x00\x02\x03")))


def garbage(n):
    return os.urandom(n)


KINDS = {
    "short": lambda: b"\x48\x41\x46",
    "empty": lambda: b"",
    "bad_magic": lambda: b"XXXX" + header(8)[4:] + garbage(8),
    "bad_version": lambda: header(8, version=9) + garbage(8),
    "bad_type": lambda: header(8, mtype=0) + garbage(8),
    # a later minor version's message type: passes the header, skipped
    "unknown_type": lambda: header(8, mtype=77) + garbage(8),
    "truncated": lambda: header(500) + garbage(100),
    "trailing": lambda: header(10) + garbage(50),
    "bad_sender": lambda: header(8, sender=0) + garbage(8),
    "bad_frame": lambda: header(64) + b"\xff" * 64,
    "bad_event": lambda: (lambda p: header(len(p)) + p)(bad_event_frame()),
    "oversized": lambda: header(8000) + b"\xff" * 8000,
    "valid": lambda: (lambda p: header(len(p)) + p)(valid_frame()),
}


def heartbeat(sender, seq):
    payload = field(1, 0, sender) + field(3, 0, seq) + field(7, 2, b"stream")
    return header(len(payload), mtype=2, sender=sender, seq=seq) + payload


def stream(sock, group, port, rate, seconds):
    """Heartbeats of a made-up peer (id 3) at `rate` per second: numbered
    1, 2, 3, ... so the receiver counts every one it misses."""
    seq, start, sent = 0, time.monotonic(), 0
    end = start + min(seconds, 600)
    while time.monotonic() < end:
        due = int((time.monotonic() - start) * rate)
        while sent < due:
            seq += 1
            sock.sendto(heartbeat(3, seq), (group, port))
            sent += 1
        time.sleep(0.002)
    print("sent", sent, flush=True)


def main():
    if len(sys.argv) == 7 and sys.argv[4] == "stream":
        local, group, port, _, rate, seconds = sys.argv[1:]
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(local))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        stream(s, group, int(port), float(rate), float(seconds))
        return 0
    if len(sys.argv) != 6 or sys.argv[4] not in KINDS:
        print(__doc__, file=sys.stderr)
        print("kinds:", " ".join(KINDS), file=sys.stderr)
        return 2
    local, group, port, kind, count = sys.argv[1:]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(local))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    for _ in range(min(int(count), 1000)):
        s.sendto(KINDS[kind](), (group, int(port)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
