"""Image quality metrics for the benchmark: PSNR and SSIM (Wang et al. 2004) with numpy, and the reference pipeline.

The reference is what a careful, slow resizer would produce: full-resolution decode, EXIF orientation applied,
each channel resampled in 32-bit float with LANCZOS straight to the target size. `reference_jpeg` encodes it at the
derivative's quality, so "our output vs ideal" can be compared with "reference JPEG vs ideal" on equal terms.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageOps


def ideal(data: bytes, size: tuple[int, int], *, cover: bool) -> np.ndarray:
    """Float RGB array (H, W, 3) in 0..255 of the upload resampled straight to `size` (cover: centred crop)."""
    with Image.open(io.BytesIO(data)) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")  # the bench inputs carry no ICC profile
    box = (0.0, 0.0, float(image.width), float(image.height))
    if cover:
        # The same centred crop box ImageOps.fit computes, but resampled in float.
        target_ratio = size[0] / size[1]
        ratio = image.width / image.height
        if ratio > target_ratio:
            w = image.height * target_ratio
            box = ((image.width - w) / 2, 0.0, (image.width + w) / 2, float(image.height))
        else:
            h = image.width / target_ratio
            box = (0.0, (image.height - h) / 2, float(image.width), (image.height + h) / 2)
    bands = [
        np.asarray(band.convert("F").resize(size, Image.Resampling.LANCZOS, box=box), dtype=np.float64)
        for band in image.split()
    ]
    return np.clip(np.stack(bands, axis=-1), 0.0, 255.0)


def reference_jpeg(ideal_rgb: np.ndarray, quality: int) -> bytes:
    """The ideal image rounded to 8 bits and encoded like a derivative."""
    image = Image.fromarray(np.round(ideal_rgb).astype(np.uint8), "RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def decode_rgb(jpeg: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(jpeg)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all channels (8-bit peak)."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _gaussian_blur(x: np.ndarray, sigma: float = 1.5, radius: int = 5) -> np.ndarray:
    """Separable 11-tap Gaussian, 'valid' region only (as in the reference SSIM implementation)."""
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    rows = np.apply_along_axis(lambda r: np.convolve(r, taps, mode="valid"), 1, x)
    return np.apply_along_axis(lambda c: np.convolve(c, taps, mode="valid"), 0, rows)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of the luma channels, Gaussian window 11x11 sigma 1.5, K1=0.01, K2=0.03."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    x, y = _luma(a), _luma(b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _gaussian_blur(x), _gaussian_blur(y)
    sxx = _gaussian_blur(x * x) - mx * mx
    syy = _gaussian_blur(y * y) - my * my
    sxy = _gaussian_blur(x * y) - mx * my
    value = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(value.mean())
