"""What a power cut would leave: the durable state of a directory tree, kept beside it.

The strict POSIX reading (the one ALICE and LazyFS test against), nothing more:

- a file's *contents* become durable by ``fsync``/``fdatasync`` of that file;
- a directory's *entries* (create, link, rename in or out, unlink, mkdir, rmdir) become
  durable by an ``fsync`` of that directory, and only of that directory;
- ``syncfs``/``sync`` would make everything durable, but a ``/dev/fuse`` filesystem
  never hears of them (the kernel sends FUSE_SYNCFS only to virtiofs), so nothing here
  pretends they happened.

Inodes get ids of their own (the backing filesystem reuses inode numbers): a new id at
every create, kept across link and rename. A file's durable contents are either bytes
kept here, or "the first L bytes of the live file" while nothing has touched those
bytes since: any write below L, truncate below L or removal of the last link copies
them here first. So an append-only journal costs nothing to track.
"""

from __future__ import annotations

import os
import random
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

ROOT = 0


@dataclass
class Stats:
    """What the filesystem saw, for the test's report."""

    fsyncs: int = 0
    dir_fsyncs: int = 0
    creates: int = 0
    materialized_bytes: int = 0
    lost_entries: int = 0  # filled by rebuild: live names the power cut forgot

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class DurableModel:
    backing: Path
    ids: dict[int, int] = field(default_factory=dict)  # backing st_ino -> our id
    is_dir: dict[int, bool] = field(default_factory=dict)
    entries: dict[int, dict[str, int]] = field(default_factory=dict)  # durable, per dir id
    kept: dict[int, bytes] = field(default_factory=dict)  # durable bytes held here
    prefix: dict[int, int] = field(default_factory=dict)  # durable = live[:L]
    stats: Stats = field(default_factory=Stats)
    _next: int = 1

    # -- start: everything already in the backing directory is durable -----------------
    @classmethod
    def scan(cls, backing: Path) -> DurableModel:
        m = cls(backing)
        m.ids[os.lstat(backing).st_ino] = ROOT
        m.is_dir[ROOT] = True
        m.entries[ROOT] = {}
        stack = [(backing, ROOT)]
        while stack:
            path, dir_id = stack.pop()
            for entry in os.scandir(path):
                st = entry.stat(follow_symlinks=False)
                child = m.ids.get(st.st_ino)
                if child is None:
                    child = m._new_id(st)
                    if stat.S_ISDIR(st.st_mode):
                        stack.append((Path(entry.path), child))
                    else:
                        m.prefix[child] = st.st_size
                m.entries[dir_id][entry.name] = child
        return m

    def _new_id(self, st: os.stat_result) -> int:
        new = self._next
        self._next += 1
        self.ids[st.st_ino] = new
        self.is_dir[new] = stat.S_ISDIR(st.st_mode)
        if self.is_dir[new]:
            self.entries[new] = {}
        else:
            self.kept[new] = b""  # nothing of a new file is durable yet
        return new

    def id_of(self, path: Path) -> int:
        st = os.lstat(path)
        found = self.ids.get(st.st_ino)
        if found is None:  # not made through us (cannot happen while mounted)
            raise LookupError(f"powerfs: no id for {path}")
        return found

    # -- hooks the passthrough calls -----------------------------------------------------
    def created(self, path: Path) -> None:
        """A new inode at ``path`` (create, mknod, mkdir): a fresh id."""
        self.stats.creates += 1
        self._new_id(os.lstat(path))

    def _materialize(self, file_id: int, path: Path | int) -> None:
        length = self.prefix.pop(file_id, None)
        if length is None:
            return
        if isinstance(path, int):  # the descriptor may be write-only: reopen it to read
            path = Path(f"/proc/self/fd/{path}")
        with open(path, "rb") as f:
            data = f.read(length)
        self.kept[file_id] = data.ljust(length, b"\0")
        self.stats.materialized_bytes += length

    def before_write(self, fd: int, offset: int) -> None:
        file_id = self.ids.get(os.fstat(fd).st_ino)
        if file_id is not None and offset < self.prefix.get(file_id, 0):
            self._materialize(file_id, fd)

    def before_truncate(self, path: Path, length: int) -> None:
        file_id = self.id_of(path)
        if length < self.prefix.get(file_id, 0):
            self._materialize(file_id, path)

    def before_unlink(self, path: Path) -> None:
        """``path`` (a file) is about to lose a name; keep its bytes if it was the last."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode) or st.st_nlink > 1:
            return
        file_id = self.ids.get(st.st_ino)
        if file_id is not None:
            self._materialize(file_id, path)
            del self.ids[st.st_ino]  # the inode number may be reused by a new file

    def fsync_file(self, fd: int) -> None:
        self.stats.fsyncs += 1
        st = os.fstat(fd)
        file_id = self.ids[st.st_ino]
        if self.is_dir.get(file_id):
            return
        self.kept.pop(file_id, None)
        self.prefix[file_id] = st.st_size

    def fsync_dir(self, path: Path) -> None:
        self.stats.dir_fsyncs += 1
        dir_id = self.id_of(path)
        self.entries[dir_id] = {
            e.name: self.ids[e.stat(follow_symlinks=False).st_ino] for e in os.scandir(path)
        }

    # -- the power cut ---------------------------------------------------------------------
    def live(self) -> tuple[dict[int, Path], set[str]]:
        """(our id -> one live path, every live name relative to the backing) from one
        walk; ``DirEntry.inode()`` costs no stat."""
        paths: dict[int, Path] = {}
        names: set[str] = set()
        cut = len(str(self.backing)) + 1
        stack = [str(self.backing)]
        while stack:
            for entry in os.scandir(stack.pop()):
                names.add(entry.path[cut:])
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                file_id = self.ids.get(entry.inode())
                if file_id is not None:
                    paths.setdefault(file_id, Path(entry.path))
        return paths, names

    def durable_names(self) -> set[str]:
        names: set[str] = set()
        seen: set[int] = set()

        def walk(dir_id: int, rel: str) -> None:
            seen.add(dir_id)
            for name, child in self.entries.get(dir_id, {}).items():
                names.add(f"{rel}{name}")
                if self.is_dir.get(child) and child not in seen:
                    walk(child, f"{rel}{name}/")

        walk(ROOT, "")
        return names

    def image(self, out: Path, tear: random.Random | None = None) -> int:
        """Write the durable state into the new directory ``out`` (the live state is left
        alone); returns how many live names it forgot. ``tear``: also keep a random part of
        the first unsynced page past a file's durable length, as a disk that wrote part of
        its cache before the power went (LazyFS's torn writes)."""
        live, live_names = self.live()
        lost = len(live_names - self.durable_names())
        out.mkdir(parents=True)
        placed: dict[int, Path] = {}

        def build(dir_id: int, at: Path) -> None:
            for name, child in sorted(self.entries.get(dir_id, {}).items()):
                target = at / name
                if child in placed:
                    if self.is_dir.get(child):
                        continue  # a directory durable under two names: keep the first
                    os.link(placed[child], target)
                    continue
                placed[child] = target
                if self.is_dir.get(child):
                    target.mkdir()
                    build(child, target)
                elif child in self.prefix:
                    src = live.get(child)
                    if src is None:
                        raise RuntimeError(f"powerfs: durable bytes of id {child} were lost")
                    length = self.prefix[child]
                    if tear is not None:
                        length += _torn_extra(tear, length, os.lstat(src).st_size)
                    _copy_prefix(src, target, length)
                else:
                    target.write_bytes(self.kept.get(child, b""))

        build(ROOT, out)
        return lost

    def rebuild(self) -> Stats:
        """Rewrite the backing directory to exactly the durable state."""
        out = self.backing.with_name(self.backing.name + ".durable")
        if out.exists():
            shutil.rmtree(out)
        self.stats.lost_entries = self.image(out)
        for entry in os.scandir(self.backing):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        for entry in os.scandir(out):
            os.rename(entry.path, self.backing / entry.name)
        out.rmdir()
        return self.stats


PAGE = 4096


def _torn_extra(rng: random.Random, durable: int, live: int) -> int:
    """How many unsynced bytes past ``durable`` a torn write kept: none, or part of the
    rest of the page they start in (never a whole later page without the one before)."""
    if live <= durable or rng.random() < 0.5:
        return 0
    page_end = (durable // PAGE + 1) * PAGE
    return rng.randint(1, min(live, page_end) - durable)


def _copy_prefix(src: Path, dst: Path, length: int) -> None:
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        left = length
        while left > 0:
            n = os.copy_file_range(fi.fileno(), fo.fileno(), left)
            if n == 0:  # the live file is shorter (cannot happen: truncate keeps the bytes)
                break
            left -= n
