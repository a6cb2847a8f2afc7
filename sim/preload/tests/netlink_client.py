"""A netlink client written against the kernel's socket API only.

Run by tests/python.rs with the shim preloaded: nothing here knows about
the simulator. Each check prints `ok NAME`; a failed check raises.

    python3 netlink_client.py main        # JOOL_SIM_SOCKET set
    python3 netlink_client.py unreachable # JOOL_SIM_SOCKET unset or wrong
"""

import errno
import os
import select
import socket
import struct
import sys

AF_NETLINK = 16
NETLINK_GENERIC = 16
NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_EXT_ACK = 11
NETLINK_CAP_ACK = 10
NETLINK_ADD_MEMBERSHIP = 1
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
JOOL_STATS_FOREACH = 7

seq = 0


def ok(name):
    print("ok", name, flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def attr(kind, payload):
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def request(kind, cmd, version, payload, pid):
    global seq
    seq += 1
    genl = struct.pack("=BBH", cmd, version, 0)
    body = genl + payload
    return struct.pack("=IHHII", 16 + len(body), kind, NLM_F_REQUEST, seq, pid) + body


def getfamily(name, pid):
    return request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, attr(CTRL_ATTR_FAMILY_NAME, name + b"\0"), pid)


def stats_foreach(family, pid):
    # Jool 4.1.9's header: magic, version 4.1.9.0, SIIT, flags, reserved,
    # instance name (as the captured `jool_siit stats display` sends it).
    jool = b"jool" + bytes([4, 1, 9, 0, 1, 0, 0, 0]) + b"default".ljust(16, b"\0")
    return request(family, JOOL_STATS_FOREACH, 1, jool, pid)


def header(msg):
    return struct.unpack_from("=IHHII", msg)


def attrs(msg, offset):
    out = []
    while offset + 4 <= len(msg):
        length, kind = struct.unpack_from("=HH", msg, offset)
        out.append((kind, msg[offset + 4:offset + length]))
        offset += (length + 3) & ~3
    return out


def family_id(reply):
    for kind, value in attrs(reply, 20):
        if kind == CTRL_ATTR_FAMILY_ID:
            return struct.unpack("=H", value[:2])[0]
    raise AssertionError("no family id in %r" % reply)


def main():
    s = socket.socket(AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    check(s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_RAW, "SO_TYPE")
    check(s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) == AF_NETLINK, "SO_DOMAIN")
    check(s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL) == NETLINK_GENERIC, "SO_PROTOCOL")
    check(s.getsockname() == (0, 0), "unbound getsockname %r" % (s.getsockname(),))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    check(s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 65536, "SO_RCVBUF doubled")
    ok("sockopts")

    s.bind((0, 0))
    pid, groups = s.getsockname()
    check((pid, groups) == (os.getpid(), 0), "bound getsockname %r" % ((pid, groups),))
    s.bind((pid, 0))  # Binding again to the same port is fine...
    try:
        s.bind((pid + 1, 0))  # ...to another one is not.
        raise AssertionError("rebind succeeded")
    except OSError as e:
        check(e.errno == errno.EINVAL, "rebind errno %r" % e)
    ok("bind")

    check(s.getsockopt(SOL_NETLINK, NETLINK_EXT_ACK) == 0, "ext ack off")
    s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
    s.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
    s.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, 1)
    check(s.getsockopt(SOL_NETLINK, NETLINK_EXT_ACK) == 1, "ext ack on")
    check(s.getsockopt(SOL_NETLINK, NETLINK_CAP_ACK) == 1, "cap ack on")
    try:
        s.setsockopt(SOL_NETLINK, 99, 1)
        raise AssertionError("unknown option accepted")
    except OSError as e:
        check(e.errno == errno.ENOPROTOOPT, "unknown option errno %r" % e)
    ok("netlink options")

    # GETFAMILY, read as libnl does: peek with MSG_TRUNC for the length.
    check(s.send(getfamily(b"Jool", pid)) == 32, "send length")
    small = bytearray(16)
    full = s.recv_into(small, 16, socket.MSG_PEEK | socket.MSG_TRUNC)
    check(full > 16, "peeked length %d" % full)
    check(header(small)[0] == full, "nlmsg_len %d vs %d" % (header(small)[0], full))
    reply, addr = s.recvfrom(65536)
    check(len(reply) == full, "read %d, peeked %d" % (len(reply), full))
    check(addr == (0, 0), "sender %r" % (addr,))
    length, kind, flags, rseq, rpid = header(reply)
    check((kind, rseq, rpid) == (GENL_ID_CTRL, seq, pid), "reply header %r" % (header(reply),))
    family = family_id(reply)
    check(family == 0x20, "family id %#x" % family)
    ok("getfamily %#x %d" % (family, full))

    # STATS_FOREACH through sendmsg with two iovecs, read with recvmsg.
    req = stats_foreach(family, pid)
    check(s.sendmsg([req[:10], req[10:]], [], 0, (0, 0)) == len(req), "sendmsg length")
    data, anc, mflags, addr = s.recvmsg(65536, 1024)
    check((anc, mflags, addr) == ([], 0, (0, 0)), "recvmsg extras %r" % ((anc, mflags, addr),))
    length, kind, flags, rseq, rpid = header(data)
    check((length, kind, rseq, rpid) == (len(data), family, seq, pid), "stats header %r" % (header(data),))
    stats = attrs(data, 20 + 28)
    check([k for k, _ in stats] == list(range(1, 70)), "stat ids %r" % [k for k, _ in stats])
    check(all(len(v) == 8 for _, v in stats), "u64 stats")
    ok("stats %d" % len(stats))

    # A short buffer truncates, MSG_TRUNC reports the real length, and the
    # rest of the datagram is gone.
    s.send(getfamily(b"Jool", pid))
    data, anc, mflags, addr = s.recvmsg(20)
    check(len(data) == 20 and mflags & socket.MSG_TRUNC, "truncated recvmsg %d %#x" % (len(data), mflags))
    s.send(getfamily(b"Jool", pid))
    check(s.recv_into(small, 16, socket.MSG_TRUNC) == full, "MSG_TRUNC length")
    try:
        s.recv(65536, socket.MSG_DONTWAIT)
        raise AssertionError("data left after truncation")
    except BlockingIOError:
        pass
    ok("truncation")

    # Two requests before reading: both replies, in order (the second
    # send meets the first reply before its answer).
    s.send(getfamily(b"Jool", pid))
    first = seq
    s.send(getfamily(b"Nope", pid))
    a = s.recv(65536)
    b = s.recv(65536)
    check(header(a)[3] == first and header(a)[1] == GENL_ID_CTRL, "first reply %r" % (header(a),))
    check(header(b)[3] == first + 1 and header(b)[1] == NLMSG_ERROR, "second reply %r" % (header(b),))
    code = struct.unpack_from("=i", b, 16)[0]
    check(code == -errno.ENOENT, "unknown family error %d" % code)
    ok("pipelined")

    # poll/select: readable exactly when a reply is queued.
    check(select.select([s], [], [], 0)[0] == [], "readable while empty")
    s.send(getfamily(b"Jool", pid))
    check(select.select([s], [], [], 5)[0] == [s], "not readable with a reply")
    s.recv(65536)
    ok("select")

    # A zero-length datagram fails as on netlink.
    try:
        s.send(b"")
        raise AssertionError("empty send succeeded")
    except OSError as e:
        check(e.errno == errno.ENODATA, "empty send errno %r" % e)
    ok("empty send")

    # A dup is the same socket (socket(fileno=) asks getsockname and
    # getsockopt what it is).
    d = socket.socket(fileno=os.dup(s.fileno()))
    check((d.family, d.type, d.proto) == (AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC),
          "dup identity %r" % ((d.family, d.type, d.proto),))
    check(d.getsockname() == (pid, 0), "dup getsockname")
    d.send(getfamily(b"Jool", pid))
    check(family_id(s.recv(65536)) == family, "reply through the original")
    d.close()
    s.send(getfamily(b"Jool", pid))
    check(family_id(s.recv(65536)) == family, "original after closing the dup")
    ok("dup")

    # A second socket autobinds on its first send.
    t = socket.socket(AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK, NETLINK_GENERIC)
    check(t.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_DGRAM, "SOCK_DGRAM")
    t.send(getfamily(b"Jool", 0))
    tpid = t.getsockname()[0]
    check(tpid not in (0, pid), "autobound port %d" % tpid)
    select.select([t], [], [], 5)
    check(family_id(t.recv(65536)) == family, "nonblocking socket reply")
    try:
        t.recv(65536)
        raise AssertionError("nonblocking recv on empty socket returned")
    except BlockingIOError:
        pass
    t.close()
    ok("autobind %d" % tpid)

    s.close()
    other_sockets()


def other_sockets():
    """Sockets the shim must leave alone."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    u.sendto(b"hi", u.getsockname())
    check(u.recvfrom(16) == (b"hi", u.getsockname()), "AF_INET datagram")
    check(u.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) == socket.AF_INET, "AF_INET domain")
    u.close()
    ok("af_inet")
    r = socket.socket(AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    check(r.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL) == NETLINK_ROUTE, "route protocol")
    r.bind((0, 0))
    check(r.getsockname()[0] != 0, "route socket bound by the kernel")
    r.close()
    ok("netlink_route")


def unreachable():
    for _ in range(2):
        try:
            socket.socket(AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
            raise AssertionError("socket() succeeded without a daemon")
        except OSError as e:
            check(e.errno == errno.ECONNREFUSED, "errno %r" % e)
    ok("refused")


if __name__ == "__main__":
    {"main": main, "unreachable": unreachable}[sys.argv[1]]()
