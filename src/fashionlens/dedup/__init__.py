"""Exact and near-duplicate images: byte-identical files, and copies re-encoded, resized, cropped, flipped,
turned, rotated or sheared a little, letterboxed, made greyscale, relit or blurred (what an annotation tool's
augmented export makes of one photo).

Two stages. The cheap one proposes candidate pairs through indexes, so that 100k images need no all-pairs
Python loop: the perceptual hash (64-bit DCT hash; FAISS binary index, Hamming radius, the mirror image's hash
too; with embeddings, a pair beyond a few bits only where they agree too: a catalogue's thumbnails on white crowd
a wide radius with look-alikes), the turn- and rotation-tolerant signature of the padding-trimmed picture (dedup.signature; its nearest
neighbours by inner product) and, optionally, the backbone embedding (FAISS exact inner product). The second
stage verifies each candidate with ORB keypoints, a RANSAC affine fit and a comparison of the aligned pictures
(dedup.verify): a studio look-alike or a colour variant shares a background, not the picture. Without
verification (a catalogue, which keeps no pixels) a pair is a near duplicate when the hash or the embedding is
within its threshold. Verified copies are grouped by connected components: an export's half crop matches one
version of its original, a greyscale turn another, and the group joins them through those verified pairs.
Unverified links are grouped as an image with the images linked to it directly, not the transitive closure,
which a few false links (look-alikes within the thresholds) chain into one huge group. The thresholds were calibrated on real photos by
benchmarks/dedup_calibrate.py, with embeddings of the default backbone (efficientnet_lite1); another
embedding space needs its own cosine threshold.
"""

from fashionlens.lazy import lazy_exports

_EXPORTS = {
    "CANDIDATES": "groups",
    "DEFAULT_THRESHOLDS": "groups",
    "TOO_SMALL_TO_VERIFY": "groups",
    "Thresholds": "groups",
    "EXACT": "groups",
    "NEAR": "groups",
    "Fingerprints": "groups",
    "DuplicateGroup": "groups",
    "DuplicateSet": "groups",
    "DuplicateReport": "groups",
    "near_pairs": "groups",
    "group_labels": "groups",
    "covering_groups": "groups",
    "group_fingerprints": "groups",
    "image_files": "groups",
    "VERIFICATION_CACHE_KEY": "groups",
    "verified_pairs": "groups",
    "copy_pairs": "groups",
    "linked_by": "groups",
    "SIGNATURE_CACHE_KEY": "groups",
    "MIRRORED_HASH_CACHE_KEY": "groups",
    "cached_fingerprints": "groups",
    "dataset_copy_pairs": "groups",
    "find_duplicates": "groups",
    "hash_images": "hashing",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)  # `fashionlens --help` imports no OpenCV or FAISS
