"""Adversarial objectives and regularisers; :class:`GANLoss` owns the objective of each phase.

The training loop only schedules phases: it calls :meth:`GANLoss.discriminator_loss` on a D step
and :meth:`GANLoss.generator_loss` on a G step, back-propagates the returned loss and logs the
returned stats. The stats are detached tensors (no ``.item()``, so no host sync on a GPU); the
loop decides when to read them.

Kinds (logits ``r = D(real)``, ``f = D(fake)``):

- ``"hinge"``: D ``relu(1 - r) + relu(1 + f)``, G ``-f`` (SNGAN, BigGAN).
- ``"nonsaturating"``: D ``softplus(-r) + softplus(f)``, G ``softplus(-f)`` (Goodfellow; StyleGAN).
- ``"wgan-gp"``: D ``f - r`` + ``gp_weight * (||∇D(x̂)|| - 1)²`` on interpolates, G ``-f``
  (Gulrajani et al. 2017).

Any kind can add lazy R1 (``r1_gamma / 2 * ||∇_x D(x_real)||²`` every ``r1_every`` steps, scaled by
``r1_every``; Mescheder et al. 2018, StyleGAN2) and the ProGAN drift term ``drift * r²``. A generator
that exposes its intermediate latent ``w`` (:class:`medgan.networks.style.LatentGenerator`, the style
family) can add lazy path-length regularisation (:meth:`GANLoss.path_length_loss`, Karras et al. 2020).
G can also match the real batch's radially averaged power spectrum (``spectral_weight``,
:func:`spectral_loss`; after Durall et al. 2020): the squared difference of the log power per ring of
spatial frequency, which adversarial training alone leaves short at the finest scales.
With ``aux_weight`` a discriminator built with an auxiliary classifier head (AC-GAN, Odena et al. 2017)
learns the class of real images by cross-entropy, and G is asked to make fakes that head assigns to
the class they were generated for: a direct push on the class signal, beside the projection term.
With ``aux_twin`` too (TAC-GAN, Gong et al. 2019) a twin head learns the fakes' classes and G is asked to
fool it, which removes AC-GAN's reward for fakes that are merely easier to classify than real images.
With ``aux_loss="d2dce"`` the head is instead ReACGAN's (Kang et al. 2021): it embeds each image on the unit
sphere beside one learnt proxy per class, and the data-to-data cross-entropy (:func:`d2d_cross_entropy`)
pulls an image towards its class proxy against images of *other* classes in the batch, with margins that
ignore easy negatives and already-close positives: the class push without AC-GAN's reward for fakes
far from the class boundary.
With ``lecam_weight`` D's loss adds the LeCam regulariser (Tseng et al. 2021, for GANs on limited data):
real logits above the moving average of the fake logits, and fake logits below the moving average of
the real ones, are penalised quadratically, which keeps D from separating a small training set by an
ever larger margin, where R1 instead flattens D's gradient at the real images.
With ``recon_weight`` a discriminator built with a decoder (FastGAN's self-supervised discriminator,
Liu et al. 2021) also rebuilds each real image it scores from its own intermediate features, by mean
squared error: D must keep features that describe whole images, which slows its overfitting to a few
hundred of them.
With ``unet_weight`` a discriminator built with a U-Net decoder (U-Net GAN, Schönfeld et al. 2020) also
scores every pixel, and both players add the per-pixel loss: D can say where an image is wrong, and G
gets a gradient for each place.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from medgan.training.distributed import all_reduce_mean, rank_rows

__all__ = [
    "LOSS_NAMES",
    "GANLoss",
    "LossName",
    "centred_sign",
    "class_mean_gap",
    "class_mean_targets",
    "cutmix_masks",
    "d2d_cross_entropy",
    "d_hinge",
    "d_loss",
    "d_nonsaturating",
    "d_wasserstein",
    "g_hinge",
    "g_loss",
    "g_nonsaturating",
    "g_wasserstein",
    "gradient_penalty",
    "r1_penalty",
    "radial_power",
    "spectral_loss",
]

LossName = Literal["hinge", "nonsaturating", "wgan-gp"]
LOSS_NAMES: tuple[str, ...] = get_args(LossName)

DiscriminatorFn = Callable[[Tensor, "Tensor | None"], Tensor]
Augment = Callable[[Tensor], Tensor]


def check_loss_name(kind: str) -> LossName:
    """Return ``kind`` if it is a known loss name, else raise ``ValueError`` naming the allowed ones."""
    if kind not in LOSS_NAMES:
        raise ValueError(f"unknown GAN loss {kind!r}; allowed: {', '.join(LOSS_NAMES)}")
    return kind  # type: ignore[return-value]


# Pure functions of logits: (B,) tensors in, scalar out.


def d_hinge(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Hinge D loss ``mean(relu(1 - r)) + mean(relu(1 + f))``; zero once ``r >= 1`` and ``f <= -1``."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def g_hinge(fake_logits: Tensor) -> Tensor:
    """Hinge G loss ``-mean(f)``."""
    return -fake_logits.mean()


def d_nonsaturating(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Logistic D loss ``mean(softplus(-r)) + mean(softplus(f))`` (= BCE with labels 1 / 0)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_nonsaturating(fake_logits: Tensor) -> Tensor:
    """Non-saturating G loss ``mean(softplus(-f))`` (= BCE of fakes against label 1)."""
    return F.softplus(-fake_logits).mean()


def d_wasserstein(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Wasserstein critic loss ``mean(f) - mean(r)`` (without the gradient penalty)."""
    return fake_logits.mean() - real_logits.mean()


def g_wasserstein(fake_logits: Tensor) -> Tensor:
    """Wasserstein G loss ``-mean(f)``."""
    return -fake_logits.mean()


_D_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "hinge": d_hinge,
    "nonsaturating": d_nonsaturating,
    "wgan-gp": d_wasserstein,
}
_G_LOSSES: dict[str, Callable[[Tensor], Tensor]] = {
    "hinge": g_hinge,
    "nonsaturating": g_nonsaturating,
    "wgan-gp": g_wasserstein,
}


def _signed_loss(kind: LossName, logits: Tensor, sign: Tensor) -> Tensor:
    """D's loss for logits whose targets are ``sign`` (+1 real, -1 fake), hinge or logistic, averaged."""
    return F.relu(1.0 - sign * logits).mean() if kind == "hinge" else F.softplus(-sign * logits).mean()


def cutmix_masks(x: Tensor) -> Tensor:
    """CutMix masks for a batch shaped like ``x`` ``(B, C, *spatial)``: ``(B, 1, *spatial)`` of 0 and 1.

    Each mask is one axis-aligned box whose volume share ``1 - lam`` follows ``lam ~ U(0, 1)`` (every
    edge ``(1 - lam) ** (1 / d)`` of the image's), centred uniformly and clipped at the border; the box is 0
    and the rest 1, or (for half the rows) the other way round, so that either image can be the
    background. Draws come from the global stream, one draw per row of the global batch (DDP-consistent).
    """
    b, dims = x.shape[0], x.ndim - 2
    lam = rank_rows(lambda n: torch.rand(n, device=x.device), b)
    flip = rank_rows(lambda n: torch.rand(n, device=x.device), b) < 0.5
    edge = (1 - lam) ** (1 / dims)  # (B,)
    inside = torch.ones((b, 1, *x.shape[2:]), dtype=torch.bool, device=x.device)
    for k, n in enumerate(x.shape[2:]):
        centre = rank_rows(lambda m: torch.rand(m, device=x.device), b) * n
        half = edge * n / 2
        pos = torch.arange(n, device=x.device).unsqueeze(0) + 0.5  # pixel centres, (1, n)
        hit = (pos >= (centre - half).unsqueeze(1)) & (pos < (centre + half).unsqueeze(1))  # (B, n)
        shape = [b, 1] + [1] * dims
        shape[2 + k] = n
        inside = inside & hit.reshape(shape)
    m = (~inside).to(x.dtype)
    return torch.where(flip.reshape(b, *([1] * (dims + 1))), 1 - m, m)


def d_loss(kind: LossName, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The adversarial D loss of ``kind`` (no regularisers). Unknown kind → ``ValueError``."""
    return _D_LOSSES[check_loss_name(kind)](real_logits, fake_logits)


def g_loss(kind: LossName, fake_logits: Tensor) -> Tensor:
    """The G loss of ``kind``. Unknown kind → ``ValueError``."""
    return _G_LOSSES[check_loss_name(kind)](fake_logits)


def _per_sample_sq_norm(grad: Tensor) -> Tensor:
    return grad.square().sum(dim=tuple(range(1, grad.ndim)))  # (B,)


def centred_sign(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Mean sign of the real logits about the midpoint of the mean real and mean fake logit.

    ADA's ``E[sign(D(real))]`` assumes D's scores are centred on 0. The hinge loss does not hold them
    there: a D that scores every image alike has the same loss at any offset in (-1, 1), and a positive
    offset reads as overfitting. About the midpoint, a D that tells nothing apart scores about 0 and
    one that separates every real from every fake scores 1, whatever the offset.

    Example:
        >>> centred_sign(torch.full((4,), 0.25), torch.full((4,), 0.25))
        tensor(0.)
    """
    mid = 0.5 * (real_logits.mean() + fake_logits.mean())
    return (real_logits - mid).sign().mean()


def r1_penalty(logits: Tensor, x: Tensor) -> Tensor:
    """Mean squared input-gradient norm ``mean_b ||∇_x D(x)_b||²`` (differentiable, for R1).

    Args:
        logits: ``(B,)`` D outputs computed from ``x``.
        x: ``(B, C, *spatial)`` input with ``requires_grad=True``.
    """
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return _per_sample_sq_norm(grad).mean()


def radial_power(x: Tensor, bins: int | None = None) -> Tensor:
    """Mean power of each image's spectrum in rings of radial spatial frequency, averaged over the batch.

    Channels are averaged and each image's mean removed first, so the figure is about texture and
    contrast, not brightness. Works for 2D images ``(B, C, H, W)`` and volumes ``(B, C, D, H, W)``.

    Args:
        x: images.
        bins: number of rings between 0 and the Nyquist frequency (0.5 cycles per voxel); default
            half the smallest spatial size. Frequencies beyond Nyquist on a diagonal fall in the last ring.

    Returns:
        ``(bins,)`` float32 mean power per ring, lowest frequency first.

    Example:
        >>> radial_power(torch.randn(4, 1, 28, 28)).shape
        torch.Size([14])
    """
    spatial = x.shape[2:]
    if len(spatial) not in (2, 3):
        raise ValueError(f"radial_power needs (B, C, H, W) or (B, C, D, H, W), got shape {tuple(x.shape)}")
    n = bins if bins is not None else max(1, min(spatial) // 2)
    dims = tuple(range(-len(spatial), 0))
    f = torch.fft.rfftn(x.float().mean(1), dim=dims, norm="ortho")
    power = (f.real.square() + f.imag.square()).mean(0)
    power[(0,) * len(spatial)] = 0.0  # the mean's coefficient: removing the mean is zeroing it
    freqs = [torch.fft.fftfreq(size, device=x.device) for size in spatial[:-1]]
    freqs.append(torch.fft.rfftfreq(spatial[-1], device=x.device))
    radius = torch.stack(torch.meshgrid(*freqs, indexing="ij")).square().sum(0).sqrt()
    ring = (radius / 0.5 * n).long().clamp_(max=n - 1).flatten()
    total = torch.zeros(n, device=x.device).index_add_(0, ring, power.flatten())
    count = torch.zeros(n, device=x.device).index_add_(0, ring, torch.ones_like(power).flatten())
    return total / count.clamp_min(1)


def spectral_loss(fake: Tensor, real: Tensor, eps: float = 1e-6) -> Tensor:
    """Mean squared difference of the log radial power spectra of a fake and a real batch.

    Gradients flow into ``fake`` only. 0 when the two batches carry the same power at every scale;
    ``log(0.5)² ≈ 0.48`` times the share of rings beyond the mean when the fakes carry half the real
    power at every frequency (the mean is removed, so a ring holding only it adds 0).

    Example:
        >>> x = torch.randn(8, 1, 28, 28)
        >>> float(spectral_loss(x, x))
        0.0
    """
    target = torch.log(radial_power(real.detach()) + eps)
    return (torch.log(radial_power(fake) + eps) - target).square().mean()


def class_mean_targets(images_u8: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Each class's mean intensity of the real images, in [0, 1], and its spread: ``(num_classes, 2)``.

    Column 0 is the mean over the class's images of each image's mean intensity (for binary masks,
    the share of the volume the mask fills), column 1 their standard deviation (floored at 1e-3, so
    a class whose images all have the same mean still gives a finite unit). The targets of
    :func:`class_mean_gap`.

    Raises:
        ValueError: a class with no image.
    """
    per_image = images_u8.flatten(1).float().mean(1) / 255.0
    return _per_class_spread(per_image, labels, num_classes, "mean intensity")


def _per_class_spread(per_image: Tensor, labels: Tensor, num_classes: int, what: str) -> Tensor:
    """Per class, the mean of ``per_image`` and its standard deviation floored at 1e-3: ``(num_classes, 2)``."""
    out = torch.zeros(num_classes, 2)
    for c in range(num_classes):
        v = per_image[labels == c]
        if v.numel() == 0:
            raise ValueError(f"class {c} has no training image: no {what} to match")
        out[c, 0] = v.mean()
        out[c, 1] = v.std(unbiased=True).clamp_min(1e-3) if v.numel() > 1 else 1e-3
    return out


def class_mean_gap(fake: Tensor, y: Tensor, targets: Tensor, cap: float = 3.0) -> Tensor:
    """Unbiased batch estimate of ``mean_c E[s(d) | c]^2``: how far each class's mean intensity ``m`` lies
    from the real one, in units of the real spread, with each deviation softly capped.

    ``m`` is a fake's mean intensity in [0, 1] (``fake`` in [-1, 1]), ``d = (m - mu_c) / sigma_c`` its
    deviation from its class's real mean, and ``s(d) = cap * tanh(d / cap)`` the deviation capped softly at
    ``cap`` spreads: near the target ``s(d) ~ d``, far from it (a G's first steps, when its masks fill half
    the volume, dozens of spreads off) the term stays below ``cap^2`` and its push fades, so it does not
    drown the adversarial loss while G finds its layout. For a class with ``n >= 2`` fakes in the batch,
    the estimate is the mean of ``s(d_i) s(d_j)`` over pairs ``i != j``: its expectation is the squared mean
    alone, so it pushes the class mean to the real one without shrinking the spread of ``m`` (the plain
    ``(mean s)^2`` would, by ``Var(s) / n``). It can be negative for one batch. Classes with fewer than two
    fakes in the batch are left out; with none left, the result is a zero attached to ``fake``'s graph.

    Args:
        fake: ``(B, C, *spatial)`` generated images in [-1, 1], attached to G's graph.
        y: ``(B,)`` the classes they were generated for.
        targets: ``(K, 2)`` per class ``(mu, sigma)`` from :func:`class_mean_targets`.
        cap: the soft cap on a deviation, in real spreads.
    """
    return class_statistic_gap((fake.float().flatten(1).mean(1) + 1) / 2, y, targets, cap)


def class_statistic_gap(values: Tensor, y: Tensor, targets: Tensor, cap: float = 3.0) -> Tensor:
    """:func:`class_mean_gap` for any per-image statistic: ``values`` ``(B,)`` (attached to G's graph) against
    per class ``(mu, sigma)`` targets ``(K, 2)``; the same capped, unbiased estimate of the squared class gaps."""
    t = targets.to(values.device)
    terms = []
    for c in torch.unique(y).tolist():
        d = cap * torch.tanh((values[y == c] - t[c, 0]) / (t[c, 1] * cap))
        n = d.numel()
        if n >= 2:
            terms.append((d.sum().square() - d.square().sum()) / (n * (n - 1)))
    return torch.stack(terms).mean() if terms else values.sum() * 0.0


def mean_depth(x: Tensor, levels: int = 4, detach_area: bool = False) -> Tensor:
    """Each image's foreground thickness, differentiable: the mean city-block depth of its foreground.

    ``x`` ``(B, C, *spatial)`` in [-1, 1] (the mean over channels) is read as a foreground share
    ``f = (x + 1) / 2``. A voxel's city-block depth is the number of erosions by the face neighbours that it
    survives, plus one, so the mean depth is ``sum_k |E^k(f)| / |f|`` for ``k = 0 .. levels``. The erosion is
    the product of a voxel and its ``2 * spatial`` face neighbours, the array's edge counting as foreground
    as in ``scipy.ndimage.distance_transform_cdt``. On a binary (straight-through) mask the forward value is
    the exact mean depth up to ``levels + 1`` (deeper voxels count ``levels + 1``), and a voxel's gradient is
    the change one flip of it would make when its neighbours stay: the thickness signal reaches G through the
    sign's identity gradient. A flip that makes no voxel interior gets no push to thicken (a wholly one-voxel-thin
    region cannot be thickened by it, only where one more voxel completes a neighbourhood). An empty image has
    depth 0.

    With ``detach_area`` the area in the denominator is held fixed in the gradient (the value is the same): the
    mean depth is ``1 + sum_{k >= 1} |E^k(f)| / |f|``, and without it every background voxel far from the mask
    gets a push of ``(depth - 1) / area`` towards the foreground, so a loss that wants thinner masks is served
    most cheaply by scattered one-voxel fragments. Held fixed, only voxels that change which voxels are interior
    get a push; the thickness gap in G's loss uses it.

    Example:
        >>> m = -torch.ones(1, 1, 5, 5); m[..., 1:4, 1:4] = 1  # a 3 x 3 square: eight at depth 1, one at 2
        >>> round(float(mean_depth(m)), 4)
        1.1111
    """
    f = ((x.float().mean(1) + 1) / 2).clamp(0, 1)
    dims = f.dim() - 1
    core = tuple(slice(1, -1) for _ in range(dims))
    area = f.flatten(1).sum(1)
    if detach_area:
        area = area.detach()
    total, layer = area, f
    for _ in range(levels):
        padded = F.pad(layer, (1, 1) * dims, value=1.0)
        eroded = layer
        for axis in range(dims):
            for shift in (0, 2):
                index = list(core)
                index[axis] = slice(shift, shift + layer.shape[axis + 1])
                eroded = eroded * padded[(slice(None), *index)]
        layer = eroded
        total = total + layer.flatten(1).sum(1)
    return torch.where(area > 0, total / area.clamp_min(1e-6), torch.zeros_like(total))


def class_depth_targets(images_u8: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Each class's mean :func:`mean_depth` of the real masks (foreground above 127) and its spread:
    ``(num_classes, 2)``, the targets of :func:`class_statistic_gap` for ``class_depth_weight``.

    Raises:
        ValueError: a class with no image.
    """
    binary = torch.where(images_u8.float() > 127, 1.0, -1.0)
    per_image = torch.cat([mean_depth(chunk) for chunk in binary.split(256)])
    return _per_class_spread(per_image, labels, num_classes, "mean depth")


def d2d_cross_entropy(out: Tensor, y: Tensor, temperature: float = 0.5, pos_margin: float = 0.98,
                      neg_margin: float = 0.0) -> Tensor:
    """ReACGAN's data-to-data cross-entropy (D2D-CE, Kang et al. 2021) of one batch.

    For image ``i`` with embedding ``f_i`` and its class proxy ``v_i`` (both unit vectors), the loss is
    ``-log(e^{p_i} / (e^{p_i} + Σ_{j: y_j ≠ y_i} e^{n_ij}))`` with ``p_i = min(f_i·v_i - pos_margin, 0) / τ``
    and ``n_ij = max(f_i·f_j - neg_margin, 0) / τ``: only images of other classes are negatives (no false
    negatives), a positive already within the margin and a negative already farther than its margin give
    no gradient. A batch of one class gives zero loss.

    Args:
        out: ``(B, 1 + E)``: column 0 is ``f_i·v_i`` (the cosine to the image's own class proxy), the
            rest the unit embedding ``f_i``, as :class:`medgan.networks.cgan.Discriminator` returns with
            ``aux_embedding=True``.
        y: ``(B,)`` class labels.
        temperature: ``τ`` (0.5 in the paper).
        pos_margin: ``m_p`` (0.98).
        neg_margin: ``m_n`` (0).

    Returns:
        The scalar mean loss over the batch.
    """
    if out.ndim != 2 or out.shape[1] < 2 or y.shape != out.shape[:1]:
        raise ValueError(f"d2d_cross_entropy needs out (B, 1 + E) and y (B,), got {tuple(out.shape)} and {tuple(y.shape)}")
    pos = (out[:, 0] - pos_margin).clamp(max=0) / temperature  # (B,)
    f = out[:, 1:]
    neg = (f @ f.T - neg_margin).clamp(min=0) / temperature  # (B, B)
    other = y[:, None] != y[None, :]  # (B, B): negatives are images of another class (never i itself)
    neg = neg.masked_fill(~other, float("-inf"))
    logits = torch.cat([pos[:, None], neg], dim=1)  # (B, 1 + B), the positive first
    return (torch.logsumexp(logits, dim=1) - pos).mean()


def gradient_penalty(
    D: DiscriminatorFn, real: Tensor, fake: Tensor, y: Tensor | None, y_fake: Tensor | None = None
) -> Tensor:
    """WGAN-GP penalty ``mean((||∇D(x̂)|| - 1)²)`` at ``x̂ = eps * real + (1 - eps) * fake``.

    ``eps ~ U(0, 1)`` per sample is drawn from the global torch RNG on ``real``'s device. A
    conditional D scores the interpolates with the real labels ``y``. Only D's parameters get
    gradient from the penalty (``real`` and ``fake`` are detached).
    """
    eps = rank_rows(lambda n: torch.rand((n,) + (1,) * (real.ndim - 1), device=real.device, dtype=real.dtype),
                    real.shape[0])
    x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat, y).sum(), x_hat, create_graph=True)
    norm = _per_sample_sq_norm(grad).add(1e-12).sqrt()  # eps keeps the sqrt's gradient finite at 0
    return (norm - 1.0).square().mean()


class GANLoss:
    """The adversarial objective of each training phase, with optional R1, gradient penalty and drift.

    ``D`` is any callable ``(x, y) -> (B,)`` logits; for a progressive D bind the stage first, e.g.
    ``functools.partial(D, stage=s, alpha=a)``. ``augment`` (e.g. :class:`medgan.training.diffaugment.DiffAugment`)
    is applied to real and fake images before D, and must be differentiable.

    Args:
        kind: ``"hinge"``, ``"nonsaturating"`` or ``"wgan-gp"``.
        r1_gamma: R1 weight ``gamma``; 0 disables R1.
        r1_every: lazy regularisation interval: R1 runs on steps with ``step % r1_every == 0`` and
            is multiplied by ``r1_every`` so its average strength does not depend on the interval.
        gp_weight: WGAN-GP penalty weight (``"wgan-gp"`` only).
        drift: ProGAN's drift weight on ``mean(D(real)²)`` (0.001 in ProGAN); 0 disables it.
        pl_weight: path-length regularisation weight (2 in StyleGAN2); 0 disables it.
        pl_every: lazy path-length interval, like ``r1_every``.
        pl_decay: how fast the running mean path length follows each batch's (0.01).
        spectral_weight: weight of :func:`spectral_loss` in G's objective (needs ``real`` in
            :meth:`generator_loss`); 0 disables it.
        aux_weight: weight of the auxiliary classifier's cross-entropy, on real images in D's objective
            and on fakes (against the labels they were generated for) in G's; needs a D called as
            ``D(x, y, return_aux=True) -> (logits, class_logits)``; 0 disables it.
        aux_twin: TAC-GAN: the class logits carry a twin head (the last ``num_classes`` columns) that D trains
            on the fakes' labels and G's loss subtracts at ``aux_weight``; needs ``aux_weight > 0``.
        aux_loss: ``"ce"`` (AC-GAN's cross-entropy on class logits) or ``"d2dce"`` (ReACGAN's
            :func:`d2d_cross_entropy` on a head built with ``aux_embedding=True``; not with ``aux_twin``).
        lecam_weight: weight of the LeCam regulariser in D's objective
            (``mean(relu(r - ā_f)²) + mean(relu(ā_r - f)²)``, ``ā`` the moving averages of the mean logits;
            0.3 in the paper's limited-data runs); 0 disables it.
        lecam_decay: the moving averages' decay per D step (the first D step sets them).
        recon_weight: weight of the mean squared error between the (augmented) real images and D's
            reconstruction of them, in D's objective; needs a D called as
            ``D(x, y, return_recon=True) -> (logits, recon)``; 0 disables it.
        unet_weight: weight of the per-pixel adversarial term (U-Net GAN, Schönfeld et al. 2020) in both
            objectives: D's per-pixel logits are trained with the same loss as its image logit (every pixel
            of a real image real, of a fake one fake) and G is asked to raise them; R1 also holds their mean
            over pixels. Needs a D called as ``D(x, y, return_pixels=True) -> (logits, pixels)``; 0 disables it.
        class_mean_weight: weight of :func:`class_mean_gap` in G's objective, against the targets given to
            :meth:`set_class_means` (the real training images' per-class mean intensity and its spread); 0 disables it.
        class_depth_weight: weight of :func:`class_statistic_gap` on each fake's :func:`mean_depth` (its
            thickness, the area held fixed in the gradient) in G's objective, against the targets given to
            :meth:`set_class_depths`; 0 disables it.
        unet_cutmix: with ``unet_weight``, the probability that a D step adds U-Net GAN's CutMix terms
            (:func:`cutmix_masks`): a box of each fake pasted into its real image must score fake as a whole
            and real or fake pixel by pixel where it came from, and the per-pixel logits of the mix must
            equal the same mix of the real and the fake image's (a consistency term, squared error); 0 = off.

    Example:
        >>> loss = GANLoss("hinge", r1_gamma=0.1)
        >>> d_total, stats = loss.discriminator_loss(D, real, fake, y, step=0, augment=aug)
        >>> g_total, g_stats = loss.generator_loss(D, fake, y, augment=aug)
    """

    def __init__(
        self,
        kind: LossName = "hinge",
        r1_gamma: float = 0.0,
        r1_every: int = 16,
        gp_weight: float = 10.0,
        drift: float = 0.0,
        pl_weight: float = 0.0,
        pl_every: int = 4,
        pl_decay: float = 0.01,
        spectral_weight: float = 0.0,
        aux_weight: float = 0.0,
        aux_twin: bool = False,
        aux_loss: Literal["ce", "d2dce"] = "ce",
        lecam_weight: float = 0.0,
        lecam_decay: float = 0.99,
        recon_weight: float = 0.0,
        unet_weight: float = 0.0,
        unet_cutmix: float = 0.0,
        class_mean_weight: float = 0.0,
        class_depth_weight: float = 0.0,
    ) -> None:
        self.kind: LossName = check_loss_name(kind)
        if r1_gamma < 0 or gp_weight < 0 or drift < 0:
            raise ValueError(
                f"r1_gamma, gp_weight and drift must be >= 0, got {r1_gamma}, {gp_weight}, {drift}"
            )
        if r1_every < 1:
            raise ValueError(f"r1_every must be >= 1, got {r1_every}")
        self.r1_gamma = float(r1_gamma)
        self.r1_every = int(r1_every)
        self.gp_weight = float(gp_weight)
        self.drift = float(drift)
        if pl_weight < 0 or pl_every < 1 or not 0 < pl_decay <= 1:
            raise ValueError(f"need pl_weight >= 0, pl_every >= 1 and 0 < pl_decay <= 1, got {pl_weight}, {pl_every}, {pl_decay}")
        self.pl_weight, self.pl_every, self.pl_decay = float(pl_weight), int(pl_every), float(pl_decay)
        if not 0 <= spectral_weight < float("inf"):
            raise ValueError(f"spectral_weight must be >= 0, got {spectral_weight}")
        self.spectral_weight = float(spectral_weight)
        if not 0 <= aux_weight < float("inf"):
            raise ValueError(f"aux_weight must be >= 0, got {aux_weight}")
        self.aux_weight = float(aux_weight)
        if aux_twin and self.aux_weight == 0:
            raise ValueError("aux_twin needs aux_weight > 0")
        self.aux_twin = bool(aux_twin)
        if aux_loss not in ("ce", "d2dce"):
            raise ValueError(f"aux_loss must be 'ce' or 'd2dce', got {aux_loss!r}")
        if aux_loss == "d2dce" and aux_twin:
            raise ValueError("aux_twin works with aux_loss='ce' only")
        self.aux_loss = aux_loss
        if not 0 <= lecam_weight < float("inf") or not 0 <= lecam_decay < 1:
            raise ValueError(f"need lecam_weight >= 0 and 0 <= lecam_decay < 1, got {lecam_weight}, {lecam_decay}")
        self.lecam_weight, self.lecam_decay = float(lecam_weight), float(lecam_decay)
        if not 0 <= recon_weight < float("inf"):
            raise ValueError(f"recon_weight must be >= 0, got {recon_weight}")
        self.recon_weight = float(recon_weight)
        if not 0 <= unet_weight < float("inf"):
            raise ValueError(f"unet_weight must be >= 0, got {unet_weight}")
        self.unet_weight = float(unet_weight)
        if not 0 <= unet_cutmix <= 1 or (unet_cutmix > 0 and (self.unet_weight == 0 or self.kind == "wgan-gp")):
            raise ValueError(f"unet_cutmix must be in [0, 1] and needs unet_weight > 0 and a hinge or non-saturating "
                             f"loss, got {unet_cutmix} with {self.kind!r}")
        self.unet_cutmix = float(unet_cutmix)
        if not 0 <= class_mean_weight < float("inf"):
            raise ValueError(f"class_mean_weight must be >= 0, got {class_mean_weight}")
        self.class_mean_weight = float(class_mean_weight)
        self.class_means: Tensor | None = None  # (K, 2): each class's real mean intensity and its spread
        if not 0 <= class_depth_weight < float("inf"):
            raise ValueError(f"class_depth_weight must be >= 0, got {class_depth_weight}")
        self.class_depth_weight = float(class_depth_weight)
        self.class_depths: Tensor | None = None  # (K, 2): each class's real mean depth and its spread
        # Training state, saved with the checkpoint (state_dict): the running mean path length, and
        # LeCam's moving averages of the mean real and fake logits (NaN until the first D step).
        self.pl_mean = torch.zeros(())
        self.lecam_means = torch.full((2,), float("nan"))

    def __repr__(self) -> str:
        return (
            f"GANLoss(kind={self.kind!r}, r1_gamma={self.r1_gamma}, r1_every={self.r1_every}, "
            f"gp_weight={self.gp_weight}, drift={self.drift}, pl_weight={self.pl_weight}, pl_every={self.pl_every}, "
            f"spectral_weight={self.spectral_weight}, aux_weight={self.aux_weight}, aux_twin={self.aux_twin}, "
            f"aux_loss={self.aux_loss!r}, lecam_weight={self.lecam_weight}, recon_weight={self.recon_weight}, "
            f"unet_weight={self.unet_weight}, unet_cutmix={self.unet_cutmix}, "
            f"class_mean_weight={self.class_mean_weight}, class_depth_weight={self.class_depth_weight})"
        )

    def set_class_means(self, targets: Tensor) -> None:
        """The real per-class ``(mean, spread)`` of :func:`class_mean_targets`, the targets of ``class_mean_weight``."""
        self.class_means = targets.detach().float().cpu()

    def set_class_depths(self, targets: Tensor) -> None:
        """The real per-class ``(mean, spread)`` of :func:`class_depth_targets`, the targets of ``class_depth_weight``."""
        self.class_depths = targets.detach().float().cpu()

    def state_dict(self) -> dict[str, Tensor]:
        """The loss's own training state (the running mean path length, LeCam's averages), for an exact resume."""
        return {"pl_mean": self.pl_mean.detach().clone(), "lecam_means": self.lecam_means.detach().clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore what :meth:`state_dict` returned (a checkpoint from before LeCam has no averages yet)."""
        self.pl_mean = state["pl_mean"].detach().clone()
        self.lecam_means = state.get("lecam_means", torch.full((2,), float("nan"))).detach().clone()

    def lecam_penalty(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """LeCam's regulariser for one D step, after updating its moving averages with this batch.

        The averages follow the mean real and fake logits (under DDP, over every rank's batch), and
        the first call sets them. Returns ``mean(relu(r - ā_f)²) + mean(relu(ā_r - f)²)``.
        """
        # One collective for both means.
        batch = all_reduce_mean(torch.stack([real_logits.detach().float().mean(), fake_logits.detach().float().mean()]))
        means = self.lecam_means.to(batch.device)
        self.lecam_means = torch.where(means.isnan(), batch, means.lerp(batch, 1 - self.lecam_decay))
        avg_real, avg_fake = self.lecam_means[0], self.lecam_means[1]
        return F.relu(real_logits - avg_fake).square().mean() + F.relu(avg_real - fake_logits).square().mean()

    def pl_due(self, step: int) -> bool:
        """Whether the G step ``step`` adds the lazy path-length term."""
        return self.pl_weight > 0 and step % self.pl_every == 0

    def path_length_loss(self, G: Callable[..., Any], z: Tensor, y: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        """Lazy path-length regularisation: a fixed-size step in ``w`` should move the image by a fixed amount.

        ``J_w`` is the Jacobian of the image with respect to the per-layer latents ``ws``; with
        ``u ~ N(0, I) / sqrt(pixels)``, the length ``||J_w^T u||`` of each sample is pulled towards its
        running mean ``a`` (``pl_mean``, an EMA over batches; under DDP, over every rank's batch):
        ``pl_weight * pl_every * mean((||J_w^T u|| - a)²)``.

        Args:
            G: a generator (or its DDP wrapper) called as ``G(z, y, return_w=True) -> (images, ws)``:
                one that satisfies :class:`medgan.networks.style.LatentGenerator`.
            z: ``(B, z_dim)`` latents.
            y: ``(B,)`` labels, or ``None``.

        Returns:
            ``(loss, stats)`` with detached ``pl_penalty`` (mean squared deviation) and ``pl_mean``.
        """
        fake, ws = G(z, y, return_w=True)  # (B, C, *spatial), (B, num_ws, w_dim)
        pixels = math.prod(fake.shape[2:])
        noise = rank_rows(lambda n: torch.randn((n, *fake.shape[1:]), device=fake.device, dtype=fake.dtype),
                          fake.shape[0]) / math.sqrt(pixels)
        (grad,) = torch.autograd.grad((fake * noise).sum(), ws, create_graph=True)
        lengths = grad.float().square().sum(dim=2).mean(dim=1).sqrt()  # (B,)
        batch_mean = all_reduce_mean(lengths.detach().mean())
        self.pl_mean = self.pl_mean.to(lengths.device).lerp(batch_mean, self.pl_decay)
        penalty = (lengths - self.pl_mean).square().mean()
        return penalty * (self.pl_weight * self.pl_every), {"pl_penalty": penalty.detach(), "pl_mean": self.pl_mean}

    def r1_due(self, step: int) -> bool:
        """Whether the D step ``step`` adds the lazy R1 term."""
        return self.r1_gamma > 0 and step % self.r1_every == 0

    def discriminator_loss(
        self,
        D: DiscriminatorFn,
        real: Tensor,
        fake: Tensor,
        y: Tensor | None,
        step: int,
        augment: Augment | None = None,
        y_fake: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The D objective of one step.

        Args:
            D: discriminator ``(x, y) -> (B,)``.
            real: ``(B, C, *spatial)`` real images in ``[-1, 1]``.
            fake: generated images; detached here, so G gets no gradient from this loss.
            y: ``(B,)`` labels of ``real`` (``None`` when unconditional).
            step: the D step counter, which decides whether lazy R1 runs.
            augment: differentiable augmentation applied to real and fake before D, or ``None``.
            y_fake: labels of ``fake`` when they differ from ``y``; default ``y``.

        Returns:
            ``(loss, stats)``: the scalar to back-propagate and detached scalar tensors ``d_loss``
            (the total), ``d_adv`` (adversarial part alone), ``d_real`` / ``d_fake`` (mean logits),
            ``d_real_sign`` (mean ``sign(D(real))``, ADA's statistic), ``d_real_centred_sign`` (the same
            about the midpoint of the mean real and fake logits, :func:`centred_sign`), plus ``r1`` (mean
            ``||∇_x D(x_real)||²``) on R1 steps, ``gp`` (mean ``(||∇D(x̂)|| - 1)²``) for wgan-gp, and
            ``d_aux`` (the auxiliary cross-entropy on real images) and ``d_aux_acc`` (its accuracy; ``"ce"`` only)
            with ``aux_weight``, ``d_aux_twin`` (the twin's cross-entropy on fakes) with ``aux_twin``, and
            ``lecam`` (the unweighted regulariser) with ``lecam_weight``.
        """
        aug = augment if augment is not None else _identity
        y_fake = y if y_fake is None else y_fake
        fake = fake.detach()
        do_r1 = self.r1_due(step)
        # R1 differentiates w.r.t. the un-augmented real image, through the augmentation.
        real_in = real.detach().requires_grad_(True) if do_r1 else real
        real_aug, fake_aug = aug(real_in), aug(fake)
        stats: dict[str, Tensor] = {}
        unet = self.unet_weight > 0
        real_logits, class_logits, recon, real_px = self._score(D, real_aug, y, self.aux_weight > 0,
                                                                self.recon_weight > 0, unet)
        fake_logits, fake_class_logits, _, fake_px = self._score(D, fake_aug, y_fake, self.aux_twin, False, unet)

        adv = d_loss(self.kind, real_logits, fake_logits)
        total = adv
        if real_px is not None and fake_px is not None:
            # Every pixel of a real image is real and every pixel of a fake one fake (U-Net GAN's
            # decoder loss, without its CutMix term).
            px = d_loss(self.kind, real_px.flatten(), fake_px.flatten())
            total = total + self.unet_weight * px
            stats["d_pixel"] = px.detach()
            if self.unet_cutmix > 0 and bool(torch.rand(()) < self.unet_cutmix):
                mix_terms = self._cutmix_terms(D, real_aug, fake_aug, y, real_px, fake_px)
                total = total + self.unet_weight * sum(mix_terms.values())
                stats.update({k: v.detach() for k, v in mix_terms.items()})
        if recon is not None:
            rec = F.mse_loss(recon, real_aug.detach())
            total = total + self.recon_weight * rec
            stats["d_recon"] = rec.detach()
        if class_logits is not None:
            assert y is not None
            if self.aux_loss == "d2dce":
                ce = d2d_cross_entropy(class_logits, y)
            else:
                real_head = self._heads(class_logits)[0]
                ce = F.cross_entropy(real_head, y)
                stats["d_aux_acc"] = (real_head.detach().argmax(dim=1) == y).float().mean()
            total = total + self.aux_weight * ce
            stats["d_aux"] = ce.detach()
        if fake_class_logits is not None:
            assert y_fake is not None
            twin_ce = F.cross_entropy(self._heads(fake_class_logits)[1], y_fake)
            total = total + self.aux_weight * twin_ce
            stats["d_aux_twin"] = twin_ce.detach()
        if self.kind == "wgan-gp" and self.gp_weight > 0:
            # Interpolate between the images D actually scored (both augmented).
            gp = gradient_penalty(D, real_aug, fake_aug, y)
            total = total + self.gp_weight * gp
            stats["gp"] = gp.detach()
        if self.drift > 0:
            total = total + self.drift * real_logits.square().mean()
        if self.lecam_weight > 0:
            lecam = self.lecam_penalty(real_logits, fake_logits)
            total = total + self.lecam_weight * lecam
            stats["lecam"] = lecam.detach()
        if do_r1:
            r1 = r1_penalty(real_logits, real_in)
            if real_px is not None:
                # The per-pixel head is held as smooth as the image-level one: R1 on its mean over pixels.
                r1 = r1 + r1_penalty(real_px.flatten(1).mean(1), real_in)
            total = total + (self.r1_gamma / 2) * r1 * self.r1_every
            stats["r1"] = r1.detach()

        real_detached = real_logits.detach()
        stats.update(
            d_loss=total.detach(),
            d_adv=adv.detach(),
            d_real=real_detached.mean(),
            d_fake=fake_logits.detach().mean(),
            d_real_sign=real_detached.sign().mean(),
            d_real_centred_sign=centred_sign(real_detached, fake_logits.detach()),
        )
        return total, stats

    def generator_loss(
        self, D: DiscriminatorFn, fake: Tensor, y: Tensor | None, augment: Augment | None = None,
        real: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The G objective of one step.

        Args:
            D: discriminator ``(x, y) -> (B,)``; its parameters get gradients too, so the loop
                should step only G's optimizer (and zero D's gradients before the next D step).
            fake: ``(B, C, *spatial)`` generated images, attached to G's graph.
            y: ``(B,)`` labels the fakes were generated for (``None`` when unconditional).
            augment: differentiable augmentation applied before D, or ``None``.
            real: a real batch at the fakes' size, the target of the spectral term; required when
                ``spectral_weight > 0``, ignored otherwise.

        Returns:
            ``(loss, stats)`` with detached ``g_loss`` and ``g_fake`` (mean logit of the fakes),
            ``g_spectral`` (the unweighted spectral term), ``g_class_mean`` (the unweighted
            :func:`class_mean_gap`), ``g_class_depth`` (the unweighted depth gap) and ``g_aux`` (the auxiliary
            cross-entropy of the fakes) when they are on.
        """
        aug = augment if augment is not None else _identity
        fake_logits, class_logits, _, fake_px = self._score(D, aug(fake), y, self.aux_weight > 0, False,
                                                            self.unet_weight > 0)
        loss = g_loss(self.kind, fake_logits)
        stats = {"g_fake": fake_logits.detach().mean()}
        if fake_px is not None:
            px = g_loss(self.kind, fake_px.flatten())
            loss = loss + self.unet_weight * px
            stats["g_pixel"] = px.detach()
        if class_logits is not None:
            assert y is not None
            real_head, twin_head = self._heads(class_logits)
            ce = d2d_cross_entropy(class_logits, y) if self.aux_loss == "d2dce" else F.cross_entropy(real_head, y)
            loss = loss + self.aux_weight * ce
            stats["g_aux"] = ce.detach()
            if twin_head is not None:
                twin_ce = F.cross_entropy(twin_head, y)
                loss = loss - self.aux_weight * twin_ce
                stats["g_aux_twin"] = twin_ce.detach()
        if self.class_mean_weight > 0:
            if y is None or self.class_means is None:
                raise ValueError("class_mean_weight > 0 needs class labels and the targets of set_class_means")
            gap = class_mean_gap(fake, y, self.class_means)
            loss = loss + self.class_mean_weight * gap
            stats["g_class_mean"] = gap.detach()
        if self.class_depth_weight > 0:
            if y is None or self.class_depths is None:
                raise ValueError("class_depth_weight > 0 needs class labels and the targets of set_class_depths")
            gap = class_statistic_gap(mean_depth(fake, detach_area=True), y, self.class_depths)
            loss = loss + self.class_depth_weight * gap
            stats["g_class_depth"] = gap.detach()
        if self.spectral_weight > 0:
            if real is None:
                raise ValueError("generator_loss needs the real batch when spectral_weight > 0")
            spec = spectral_loss(fake, real)
            loss = loss + self.spectral_weight * spec
            stats["g_spectral"] = spec.detach()
        return loss, {"g_loss": loss.detach(), **stats}


    @staticmethod
    def _score(
        D: DiscriminatorFn, x: Tensor, y: Tensor | None, aux: bool, recon: bool, pixels: bool = False
    ) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor | None]:
        """D's logits, with its auxiliary class logits (``aux``), its reconstruction of ``x`` (``recon``)
        and its per-pixel logits (``pixels``) when asked, from one forward pass; ``None`` for what was not
        asked."""
        if not (aux or recon or pixels):
            return D(x, y), None, None, None
        if aux and y is None:
            raise ValueError("aux_weight > 0 needs class labels (a conditional model)")
        asked = {"return_aux": aux, "return_recon": recon, "return_pixels": pixels}
        out = D(x, y, **{k: True for k, on in asked.items() if on})  # type: ignore[call-arg]
        if not isinstance(out, tuple) or len(out) != 1 + aux + recon + pixels:
            what = " and ".join(n for n, on in (("an auxiliary classifier (aux=True)", aux),
                                                 ("a decoder (recon=True)", recon),
                                                 ("a U-Net decoder (unet=True)", pixels)) if on)
            raise ValueError(f"this loss needs a discriminator with {what}")
        rest = iter(out[1:])
        return (out[0], next(rest) if aux else None, next(rest) if recon else None,
                next(rest) if pixels else None)

    def _cutmix_terms(self, D: DiscriminatorFn, real: Tensor, fake: Tensor, y: Tensor | None, real_px: Tensor,
                      fake_px: Tensor) -> dict[str, Tensor]:
        """U-Net GAN's CutMix terms on one batch: a box of each fake pasted into its real image."""
        m = cutmix_masks(real)  # 1: real pixel
        mixed = m * real + (1 - m) * fake
        logits, _, _, px = self._score(D, mixed, y, False, False, True)
        assert px is not None
        # The whole is fake; each pixel is what it came from.
        whole = _signed_loss(self.kind, logits, -torch.ones_like(logits))
        pixel = _signed_loss(self.kind, px, 2 * m - 1)
        consistency = (px - (m * real_px + (1 - m) * fake_px).detach()).square().mean()
        return {"d_cutmix": whole + pixel, "d_cutmix_consistency": consistency}

    def _heads(self, class_logits: Tensor) -> tuple[Tensor, Tensor | None]:
        """Split the class logits into the real head's and (with ``aux_twin``) the twin's."""
        if not self.aux_twin:
            return class_logits, None
        half = class_logits.shape[1] // 2
        return class_logits[:, :half], class_logits[:, half:]


def _identity(x: Tensor) -> Tensor:
    return x
