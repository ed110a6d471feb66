#!/usr/bin/python3
"""Reads character vectors from an R lazy-load database (NAME.rdx + NAME.rdb).

Usage: rdata_reader.py DB_PREFIX            lists the objects in the database
       rdata_reader.py DB_PREFIX OBJECT     writes a character vector, one element a line

The .rdx index is a gzip-compressed R serialisation of a list whose
"variables" element maps each object name to (offset, length) in the .rdb;
each .rdb record is a 4-byte big-endian uncompressed size followed by a zlib
stream holding the object's own R serialisation (XDR format, version 2 or 3).
Only what data packages hold is supported: vectors, pairlists, symbols and
references; anything else stops with a message naming the type.
"""
import gzip
import struct
import sys
import zlib

# SEXP types (R Internals, "Serialization Formats").
NILSXP, SYMSXP, LISTSXP, LANGSXP, CHARSXP = 0, 1, 2, 6, 9
LGLSXP, INTSXP, REALSXP, CPLXSXP, STRSXP, VECSXP, EXPRSXP, RAWSXP = 10, 13, 14, 15, 16, 19, 20, 24
REFSXP, NILVALUE_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP = 255, 254, 253, 252
MISSINGARG_SXP, BASENAMESPACE_SXP, EMPTYENV_SXP, BASEENV_SXP = 251, 250, 242, 241
ATTRLANGSXP, ATTRLISTSXP = 240, 239
LATIN1_MASK, UTF8_MASK = 1 << 2, 1 << 3
NA_LENGTH = -1


class RFormatError(Exception):
    pass


class Unserializer:
    def __init__(self, data, what):
        self.data, self.pos, self.what, self.refs = data, 0, what, []
        if data[:2] != b"X\n":
            raise RFormatError(f"{what}: expected XDR serialisation ('X\\n'), found {data[:2]!r}")
        self.pos = 2
        version = self.int()
        self.int()  # writer's R version
        self.int()  # minimal reader version
        if version == 3:
            self.bytes(self.int())  # native encoding name
        elif version != 2:
            raise RFormatError(f"{what}: serialisation version {version} is not 2 or 3")

    def bytes(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise RFormatError(f"{self.what}: truncated at byte {self.pos} (wanted {n} more)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self):
        return struct.unpack(">i", self.bytes(4))[0]

    def length(self):
        n = self.int()
        if n == -1:  # long vector: two more ints
            hi, lo = self.int(), self.int()
            n = (hi << 32) + lo
        return n

    def item(self):
        flags = self.int()
        kind = flags & 0xFF
        has_attr, has_tag, levels = flags & 512, flags & 1024, flags >> 12
        if kind == NILVALUE_SXP:
            return None
        if kind in (GLOBALENV_SXP, UNBOUNDVALUE_SXP, MISSINGARG_SXP, BASENAMESPACE_SXP,
                    EMPTYENV_SXP, BASEENV_SXP):
            return ("special", kind)
        if kind == REFSXP:
            index = flags >> 8 or self.int()
            if not 1 <= index <= len(self.refs):
                raise RFormatError(f"{self.what}: reference {index} out of range")
            return self.refs[index - 1]
        if kind == SYMSXP:
            symbol = ("symbol", self.item())
            self.refs.append(symbol)
            return symbol
        if kind in (LISTSXP, LANGSXP, ATTRLANGSXP, ATTRLISTSXP):
            if has_attr:
                self.item()  # a pairlist's own attributes are not needed here
            tag = self.item() if has_tag else None
            car = self.item()
            cdr = self.item()
            return [(tag[1] if tag else None, car)] + (cdr if isinstance(cdr, list) else [])
        if kind == CHARSXP:
            n = self.int()
            if n == NA_LENGTH:
                return None
            raw = self.bytes(n)
            return raw.decode("latin-1") if levels & LATIN1_MASK else raw.decode("utf-8", "surrogateescape")
        if kind in (LGLSXP, INTSXP):
            n = self.length()
            value = list(struct.unpack(f">{n}i", self.bytes(4 * n)))
        elif kind == REALSXP:
            n = self.length()
            value = list(struct.unpack(f">{n}d", self.bytes(8 * n)))
        elif kind == CPLXSXP:
            n = self.length()
            value = list(struct.unpack(f">{2 * n}d", self.bytes(16 * n)))
        elif kind == RAWSXP:
            value = self.bytes(self.length())
        elif kind == STRSXP:
            value = [self.item() for _ in range(self.length())]
        elif kind in (VECSXP, EXPRSXP):
            value = [self.item() for _ in range(self.length())]
        else:
            raise RFormatError(f"{self.what}: unsupported R object type {kind}")
        attrs = self.item() if has_attr else None
        return RVector(kind, value, attrs or [])


class RVector:
    def __init__(self, kind, value, attrs):
        self.kind, self.value, self.attrs = kind, value, attrs

    def attr(self, name):
        for tag, val in self.attrs:
            if tag == name:
                return val
        return None


def read_index(prefix):
    try:
        with open(prefix + ".rdx", "rb") as f:
            raw = gzip.decompress(f.read())
    except (OSError, EOFError, zlib.error) as e:
        raise RFormatError(f"{prefix}.rdx: cannot read the gzip-compressed index ({e})")
    index = Unserializer(raw, prefix + ".rdx").item()
    variables = index.value[index.attr("names").value.index("variables")]
    names = variables.attr("names").value
    return {name: tuple(pos.value) for name, pos in zip(names, variables.value)}


def read_object(prefix, offset, length):
    with open(prefix + ".rdb", "rb") as f:
        f.seek(offset)
        record = f.read(length)
    if len(record) != length or length < 4:
        raise RFormatError(f"{prefix}.rdb: record at {offset} is truncated")
    size = struct.unpack(">I", record[:4])[0]
    try:
        raw = zlib.decompress(record[4:])
    except zlib.error as e:
        raise RFormatError(f"{prefix}.rdb: record at {offset} is not zlib data ({e})")
    if len(raw) != size:
        raise RFormatError(f"{prefix}.rdb: record at {offset} holds {len(raw)} bytes, header says {size}")
    return Unserializer(raw, f"{prefix}.rdb@{offset}").item()


def main(argv):
    if len(argv) not in (2, 3):
        sys.stderr.write(__doc__)
        return 2
    prefix = argv[1]
    try:
        index = read_index(prefix)
        if len(argv) == 2:
            print("\n".join(sorted(index)))
            return 0
        if argv[2] not in index:
            raise RFormatError(f"{prefix}: no object named {argv[2]!r} (have: {', '.join(sorted(index))})")
        obj = read_object(prefix, *index[argv[2]])
        if not isinstance(obj, RVector) or obj.kind != STRSXP:
            raise RFormatError(f"{prefix}: object {argv[2]!r} is not a character vector")
        out = sys.stdout.buffer
        for line in obj.value:
            out.write(("" if line is None else line).encode("utf-8", "surrogateescape") + b"\n")
        return 0
    except (OSError, RFormatError) as e:
        sys.stderr.write(f"rdata_reader: {e}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
