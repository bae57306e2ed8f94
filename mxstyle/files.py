"""Small file helpers shared by the stages (no heavy imports)."""
import hashlib


def sha256_file(path, chunk=1 << 20):
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
