"""``TrainConfig``: the keys of ``configs/train/*.yaml``, checked on load.

The defaults train a small class-conditional GAN at 28² on 2 CPU cores in minutes. The same
fields scale the model on a GPU (``model.g_channels``, ``batch_size``, ``device: cuda``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from medgan.configio import bounded, check_fields, config_to_dict, flatten_keys
from medgan.errors import MedganError
from medgan.networks import FamilyName, canonical_family
from medgan.networks.cgan import UpsampleMode
from medgan.networks.cycle import PatchNorm, TranslatorArch
from medgan.networks.style import STYLE_OUTPUTS, StyleOutput
from medgan.training.diffaugment import AUGMENT_OPS
from medgan.training.loggers import LoggerName
from medgan.training.loss import LossName
from medgan.training.schedule import ProgressiveSchedule

__all__ = ["BINARY_MASK_KEYS", "EVAL_METRICS", "RESUME_MAY_CHANGE", "AugmentConfig", "CycleAdversarial", "CycleConfig", "ModelConfig", "TrainConfig",
           "resume_conflicts"]

BINARY_MASK_KEYS = ("g_keep_largest", "g_smooth", "g_stochastic", "g_recentre", "d_depth")
"""The ``model`` keys that act on ``g_binary``'s masks and are refused without it (``TrainConfig.validate``)."""


@dataclass
class ModelConfig:
    """Network family and sizes.

    Args:
        family: ``residual`` (full resolution from the start), ``progressive`` (growing) or ``style``
            (StyleGAN2-like); all are class-conditional. ``cgan``, the old name of ``residual``, is
            accepted with a warning.
        conditional: use class labels (``False`` trains an unconditional model).
        z_dim: latent size.
        g_channels: generator width (channels at the highest resolution scale from it).
        d_channels: discriminator width.
        g_max_channels: cap on generator channels at low resolutions.
        d_max_channels: cap on discriminator channels.
        g_upsample: the residual generator's upsampling, ``nearest`` or ``linear``.
        g_binary: the generator emits exactly -1 or 1 (straight-through sign), for binary mask
            data such as AdrenalMNIST3D (residual, style and cycle families).
        g_keep_largest: sampling keeps only each mask's largest connected component (with
            ``g_binary``; for masks of one organ). Training is unchanged: D sees G's raw output.
        g_recentre: the residual generator shifts each mask by whole voxels so that its centre of
            mass sits at the training masks' mean centre of mass, in training and in sampling (with
            ``g_binary``; for data cropped around one organ, where position gives samples away).
        g_noise: the residual generator adds per-pixel noise maps with learned strengths after
            every 3×3 conv (StyleGAN's noise inputs; a source of speckle-like texture).
        g_noise_init: the noise strengths' starting value (0, StyleGAN's, by default).
        g_noise_map: with ``g_noise``, also a learned gain per position for each noise map, so that
            fine texture can be stronger where the anatomy puts it.
        g_class_input: the residual generator also takes a learnt class embedding beside ``z`` in its
            first layer, so the coarse layout (an organ's size) depends on the class directly, not only
            through the per-class batch norms of later blocks (conditional models only).
        g_smooth: with ``g_binary``, the residual generator blurs its output field this many times with a
            5-tap binomial kernel (σ = 1 voxel each) before the sign, so that a mask is the level set of a
            smooth field and cannot hold isolated voxels or a one-voxel fringe (0 = off).
        g_stochastic: with ``g_binary``, the residual generator draws the sign of each voxel whose tanh output
            lies within this band of 0 at random in training (after Dong & Yang's stochastic binary neurons),
            so a field left near 0 shows as speckle and G must commit each voxel; sampling keeps the plain
            sign (0 = off; at 1 the 3D generator drew empty masks).
        g_supersample: the residual generator works at this many times the image's edge length and
            area-resizes its output down to it, as MedMNIST's images were resized from larger ones
            (1 = off; ``g_channels`` is then the width at the larger size).
        g_supersample_filter: how ``g_supersample`` resizes down: ``area`` (the mean of each cell) or
            ``bilinear`` (antialiased, 2D only: the filter MedMNIST's 2D images were resized with from
            their sources; on BreastMNIST no better than ``area``, one seed each).
        g_sle: FastGAN's skip-layer excitation in the residual generator: each feature map at 16 pixels
            or more is gated channel-wise by the map at a quarter of its resolution.
        g_floor: the residual generator's output is clamped from below (straight-through) at the
            darkest grey level that holds at least 1/1000 of the training pixels, so that dark
            regions come out flat at that level as in the data (BreastMNIST: level 1; grey images).
        d_spectral_norm: spectral norm on the residual discriminator's weights.
        d_mbstd: a minibatch-standard-deviation channel in the residual discriminator.
        d_highpass: the residual discriminator reads the image beside its high-pass residual, as the
            C2ST does (fine texture, which gives smooth synthetic images away, becomes a large input).
        d_depth: with ``g_binary``, the residual discriminator also reads how deep inside the mask each
            voxel lies, over this many erosions (:func:`medgan.networks.layers.mask_depth`; 0 = off), so that
            a gland's thickness, which tells AdrenalMNIST3D's classes apart better than its volume, is an input
            to D rather than a feature it must learn.
        d_proj_weight: the residual discriminator's projection term is scaled by this factor
            (:class:`medgan.networks.cgan.Discriminator`'s ``proj_weight``; 1 = Miyato & Koyama's), so D can
            lean harder on what tells the classes apart while still asking each class to match its own data
            (conditional models only).
        w_dim: the style family's intermediate latent size (mapping network width).
        mapping_layers: layers of the style family's mapping network.
        g_output: the style generator's output, ``skip`` (toRGB summed across resolutions) or
            ``residual`` (residual blocks, one toRGB).
    """

    family: FamilyName = "residual"
    conditional: bool = True
    z_dim: int = bounded(128, gt=0)
    g_channels: int = bounded(16, gt=0)
    d_channels: int = bounded(16, gt=0)
    g_max_channels: int = bounded(256, gt=0)
    d_max_channels: int = bounded(256, gt=0)
    g_upsample: UpsampleMode = "nearest"
    g_binary: bool = False
    g_noise: bool = False
    g_noise_init: float = bounded(0.0, ge=0)
    g_noise_map: bool = False
    g_class_input: bool = False
    g_smooth: int = bounded(0, ge=0)
    g_stochastic: float = bounded(0.0, ge=0, le=1)
    g_supersample: int = bounded(1, ge=1)
    g_supersample_filter: Literal["area", "bilinear"] = "area"
    g_keep_largest: bool = False
    g_recentre: bool = False
    g_sle: bool = False
    g_floor: bool = False
    d_spectral_norm: bool = True
    d_mbstd: bool = False
    d_highpass: bool = False
    d_depth: int = bounded(0, ge=0)
    d_proj_weight: float = bounded(1.0, gt=0)
    w_dim: int = 128
    mapping_layers: int = 4
    g_output: StyleOutput = "skip"


AdaStatistic = Literal["sign", "centred"]

EVAL_METRICS = ("fid", "swd", "values")
"""What an evaluation during training may log (config key ``eval_metrics``)."""
"""The statistic ADA holds at its target (:class:`AugmentConfig`)."""


@dataclass
class AugmentConfig:
    """Differentiable augmentation of real and fake images before D.

    Args:
        policy: ops from ``translation``, ``cutout``, ``color``; empty turns augmentation off.
        p: the fixed probability in [0, 1] (DiffAugment applies every op to every image at 1), or the
            starting one when ``adaptive``.
        adaptive: adjust p from the sign of D on reals (ADA).
        target: the ADA target for E[sign(D(real))].
        interval: steps between ADA adjustments.
        speed_images: images over which p could move from 0 to 1.
        statistic: what ADA holds at ``target``: ``sign``, the share of real logits above 0 (ADA's
            ``E[sign(D(real))]``), or ``centred``, the same about the midpoint of the batch's mean real and
            mean fake logits. A hinge D that tells nothing apart scores every image alike at an offset its
            loss leaves free; ``sign`` then reads a positive offset as overfitting and drives p to its
            maximum, which keeps D blind. ``centred`` reads only how far D separates real from fake.
        fill: the value translation shifts in and cutout sets, in ``[-1, 1]``: 0 (mid-grey, DiffAugment's) or
            -1 (background) for binary masks, whose voxels are never grey.
        p_max: the ceiling ADA never raises p above. Translation leaks into G above p ≈ 0.8 (ADA's
            paper; measured here on 3D masks pressed against the border), so a long run on small data
            may cap p below the leak and hold D with R1 instead.
    """

    policy: list[str] = field(default_factory=lambda: ["translation", "cutout", "color"])
    p: float = bounded(0.0, ge=0, le=1)
    adaptive: bool = True
    target: float = bounded(0.6, gt=0, le=1)
    interval: int = bounded(4, gt=0)
    speed_images: int = bounded(50_000, gt=0)
    statistic: AdaStatistic = "sign"
    fill: float = bounded(0.0, ge=-1, le=1)
    p_max: float = bounded(0.99, gt=0, le=1)


CycleAdversarial = Literal["lsgan", "hinge"]
"""The cycle family's adversarial loss: least squares (the CycleGAN paper's) or hinge."""


@dataclass
class CycleConfig:
    """The cycle family (``model.family: cycle``): which two domains, and the CycleGAN objective.

    Give either two classes of ``data`` (class translation, e.g. benign → malignant) or a second
    prepared dataset (domain translation, e.g. one scanner → another). Only train splits are read.
    The cycle family uses these keys instead of ``loss``, ``r1_gamma`` and ``d_steps`` (one D
    update per step).

    Args:
        source_class: class translation: the class of domain A (name or index).
        target_class: class translation: the class of domain B.
        target_data: domain translation: domain B's dataset (``data`` is domain A).
        adversarial: ``lsgan`` (least squares) or ``hinge``.
        cycle_weight: weight of the cycle-consistency L1.
        identity_weight: weight of the identity L1 (0 turns it off).
        generator: translator shape, ``resnet`` (the CycleGAN paper's) or ``unet`` (MONAI's UNet).
        g_down: stride-2 downsamplings in each translator.
        g_blocks: residual units at the lowest resolution (``resnet``).
        d_layers: layers of each MONAI patch discriminator (2: 5×5 patches at 28²).
        d_norm: the patch discriminators' normalisation, ``instance`` or ``batch``.
    """

    source_class: str | int | None = None
    target_class: str | int | None = None
    target_data: str | None = None
    adversarial: CycleAdversarial = "lsgan"
    cycle_weight: float = 10.0
    identity_weight: float = 5.0
    generator: TranslatorArch = "resnet"
    g_down: int = 2
    g_blocks: int = 6
    d_layers: int = 2
    d_norm: PatchNorm = "instance"


@dataclass
class TrainConfig:
    """Everything ``medgan train`` needs. YAML keys are exactly these fields.

    Args:
        data: a registry name (``breastmnist``), an npz or a prepared folder.
        data_size: MedMNIST size for a registry name (28, 64, ...); ``None`` = 28 or the name's suffix.
        out: the run folder.
        steps: optimisation steps (for ``progressive``, ``null`` means the schedule's total).
        batch_size: images per step on each process (the progressive schedule may override it).
        lr_g: generator learning rate.
        lr_d: discriminator learning rate.
        lr_decay_from: both learning rates stay constant until this fraction of ``steps``, then fall
            linearly towards 0 at the last step (1 = constant throughout). A function of the step alone,
            so a resumed run continues the same schedule.
        betas: Adam betas.
        loss: ``hinge``, ``nonsaturating`` or ``wgan-gp``.
        d_steps: discriminator updates per generator update (each on a fresh real batch).
        r1_gamma: R1 weight on real data (0 turns it off).
        r1_every: lazy R1 interval in steps.
        gp_weight: gradient-penalty weight for ``wgan-gp``.
        ema_decay: EMA decay of G per step (G_ema is used for sampling).
        seed: seeds every RNG.
        deterministic: deterministic algorithms (bitwise repeatable; slower on GPU).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        threads: CPU threads for torch (0 leaves torch's default).
        amp: mixed precision on CUDA (``bf16``) or ``none``; ignored on CPU.
        log_every: steps between ``metrics.jsonl`` lines.
        sample_every: steps between sample grids.
        checkpoint_every: steps between checkpoints (one is always written at the end).
        keep_checkpoints: how many periodic checkpoints to keep.
        select_checkpoint: after training, rank the kept checkpoints by how near their masks lie to the real
            training masks (the mask distance of ``medgan select``, :func:`medgan.metrics.selection.select_checkpoint`)
            and record the nearest in ``RUN/selected.json``; a run folder then samples from it (``augment``,
            ``evaluate``, the benchmark) where it would take the latest. A guard against a late runaway of D;
            conditional mask generators only (``model.g_binary``). Training or resuming the run clears the record.
        per_class: train one unconditional GAN per class instead of one class-conditional GAN, each on its
            class's training images only, one after another, with this config (the same seed, steps and model,
            ``model.conditional`` off); the run folder samples class ``c`` from class ``c``'s own generator
            (:mod:`medgan.training.perclass`), so nothing is shared between the classes. With
            ``select_checkpoint`` the pick is over every combination of the members' kept checkpoints. Costs one
            training per class; ``model.family`` 'residual' only, and not with the keys that act on a shared
            conditional model (``class_balance``, ``aux_weight``, ``class_mean_weight``, ``class_depth_weight``,
            ``model.d_proj_weight``, ``model.g_class_input``) nor ``init_from``. On AdrenalMNIST3D it drew each
            class at its real size on two training seeds where the conditional G drew the two too alike, and on a
            third drew both a third too large (``gan_quality.md``, "One GAN per class"); off in every config.
        fid_every: steps between evaluations of G_ema's samples against the real training split (0 = off);
            what each one measures is ``eval_metrics`` (and ``eval_c2st``). The evaluation leaves the
            training run's random streams as they were, so turning it on does not change the weights.
        fid_samples: synthetic samples per evaluation.
        eval_metrics: what each evaluation logs: ``fid`` (FID in the domain feature space; the
            mode-collapse alarm of ``collapse_share`` reads the same features and runs only with it),
            ``swd`` (``swd/mean``, the pixel-level sliced Wasserstein distance) and ``values`` (for
            two-valued data such as masks: the share of voxels near the two values, the connected pieces
            per mask and, per class, the mask's size and how well size alone tells the class,
            :func:`medgan.metrics.evaluate.value_metrics`; nothing on other data). ``values`` needs no
            feature network, so it is the cheap one for 3D masks; a class drawn at the wrong size is
            also reported through a warning.
        grid_columns: samples per class in the sample grid.
        logger: ``jsonl`` (``metrics.jsonl`` only, always written) or ``tensorboard`` (also TensorBoard
            event files in ``RUN/tensorboard/``: the losses, ADA p, FID, sample grids; needs
            ``pip install "medgan[tensorboard]"``).
        model: network family and sizes.
        augment: differentiable augmentation.
        progressive: the growing schedule (only for ``model.family: progressive``).
        cycle: the two domains and the objective (only for ``model.family: cycle``).
        pl_weight: path-length regularisation weight (0 = off); only for a generator that exposes
            its ``w`` (the style family).
        pl_every: lazy path-length interval in steps.
        spectral_weight: weight of a term in G's loss that matches the real batch's radially averaged
            log power spectrum (:func:`medgan.training.loss.spectral_loss`; 0 = off); not for the cycle family.
        aux_weight: AC-GAN: D gains an auxiliary classifier head trained on real images' classes, and G is
            asked to make fakes it assigns to their class, both by cross-entropy at this weight (0 = off);
            conditional residual and style families only.
        aux_twin: TAC-GAN: beside the auxiliary classifier, a twin head learns the fakes' classes and G is
            asked to fool it (at ``aux_weight``), which cancels AC-GAN's reward for fakes easier to classify
            than real images; needs ``aux_weight > 0``.
        aux_loss: the class loss at ``aux_weight``: ``ce`` (AC-GAN's cross-entropy on class logits) or
            ``d2dce`` (ReACGAN's data-to-data cross-entropy on an embedding head with class proxies,
            :func:`medgan.training.loss.d2d_cross_entropy`: only images of other classes are negatives,
            with margins that stop the push once a sample is well inside its class); ``d2dce`` is for the
            residual family, without ``aux_twin``.
        lecam_weight: the LeCam regulariser in D's loss (:meth:`medgan.training.loss.GANLoss.lecam_penalty`;
            Tseng et al. 2021, limited data; 0 = off); not for the cycle family.
        recon_weight: FastGAN's self-supervised discriminator: D also rebuilds each real image from its
            feature map at a quarter of the resolution, by mean squared error at this weight (0 = off);
            residual family only.
        unet_weight: U-Net GAN (Schönfeld et al. 2020): D gains a decoder with skip connections that gives a
            real/fake logit per pixel, trained and asked by the adversarial loss at this weight beside the
            image-level one (0 = off); residual family only.
        unet_cutmix: with ``unet_weight``, the probability that a D step adds U-Net GAN's CutMix terms
            (:class:`medgan.training.loss.GANLoss`): a fake box pasted into a real image scores fake as a
            whole and pixel by pixel where it came from, consistently with the two images' own maps (0 = off).
        class_mean_weight: G's loss adds the squared gap, in units of the real spread, between each class's
            mean intensity in its batch and the real training images' (for binary masks: the share of the
            volume the mask fills), each deviation capped softly at 3 spreads, estimated without bias from
            the batch (:func:`medgan.training.loss.class_mean_gap`; 0 = off); conditional models only. It did
            not help on the 3D default (benchmarks/results/gan_quality.md).
        class_depth_weight: the same for each class's mean thickness (:func:`medgan.training.loss.mean_depth`,
            the mean city-block depth of the foreground above mid-grey; for the masks of AdrenalMNIST3D the cue
            that tells the classes apart); 0 = off; conditional models only. It did not help on the 3D default
            (benchmarks/results/gan_quality.md).
        class_balance: how far the real batches (and so the classes G is asked for) move from the training
            split's class mix towards every class equally often, a rarer class's images repeated
            (:class:`medgan.training.loop.ClassBalancedSampler`): a power ``b`` in [0, 1], class k drawn in
            proportion to ``n_k ** (1 - b)``; ``true`` (= 1) is even, ``0.5`` the square root of the
            counts, ``false`` (= 0) the split's own mix. Conditional adversarial families only.
        init_from: transfer (Wang et al. 2018, "Transferring GANs"): a checkpoint or run folder of a GAN
            trained on other data, whose G, D and G_ema start this run instead of random weights; its
            model must build the same networks as this config's (same family, sizes, classes). The
            optimisers, the augmentation probability and the step count start afresh. ``None`` = random init.
        d_freeze: FreezeD (Mo et al. 2020): keep the first this many blocks of D (from the image side)
            fixed at their starting weights; with ``init_from`` these are the source GAN's low-level
            filters. Residual family only; 0 = train all of D.
        collapse_share: the mode-collapse alarm: warn when a class's sample diversity falls below
            this share of the real images' (checked every ``fid_every`` steps; 0 = off).
        eval_c2st: with ``fid_every > 0``, each evaluation also runs the classifier two-sample test
            (C2ST: 3 folds, at most 500 images per side; overall and per class, no real-vs-real floor)
            and logs ``c2st/auc`` and ``c2st/auc/class_*``: the figure that sees texture and artefacts
            that FID misses, at about a minute per evaluation on 2 CPU cores.
    """

    data: str = "breastmnist"
    data_size: int | None = bounded(None, gt=0)
    out: str = "runs/cgan"
    steps: int | None = bounded(2000, gt=0)
    batch_size: int = bounded(64, gt=0)
    lr_g: float = bounded(1e-4, gt=0)
    lr_d: float = bounded(4e-4, gt=0)
    lr_decay_from: float = bounded(1.0, ge=0, le=1)
    betas: list[float] = bounded(default_factory=lambda: [0.0, 0.99], ge=0, lt=1)
    loss: LossName = "hinge"
    d_steps: int = bounded(2, gt=0)
    r1_gamma: float = bounded(0.0, ge=0)
    r1_every: int = bounded(16, gt=0)
    gp_weight: float = bounded(10.0, ge=0)
    ema_decay: float = bounded(0.999, ge=0, lt=1)
    seed: int = bounded(0, ge=0)
    deterministic: bool = False
    device: str = "auto"
    threads: int = bounded(0, ge=0)
    amp: Literal["none", "bf16"] = "bf16"
    log_every: int = bounded(50, gt=0)
    sample_every: int = bounded(500, gt=0)
    checkpoint_every: int = bounded(500, gt=0)
    keep_checkpoints: int = bounded(2, gt=0)
    select_checkpoint: bool = False
    per_class: bool = False
    fid_every: int = bounded(0, ge=0)
    fid_samples: int = bounded(500, gt=0)
    eval_metrics: list[str] = field(default_factory=lambda: ["fid", "swd", "values"])
    grid_columns: int = bounded(8, gt=0)
    logger: LoggerName = "jsonl"
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    progressive: ProgressiveSchedule | None = None
    cycle: CycleConfig | None = None
    pl_weight: float = 0.0
    pl_every: int = 4
    spectral_weight: float = bounded(0.0, ge=0)
    aux_weight: float = bounded(0.0, ge=0)
    aux_twin: bool = False
    aux_loss: Literal["ce", "d2dce"] = "ce"
    lecam_weight: float = bounded(0.0, ge=0)
    recon_weight: float = bounded(0.0, ge=0)
    unet_weight: float = bounded(0.0, ge=0)
    unet_cutmix: float = bounded(0.0, ge=0, le=1)
    class_mean_weight: float = bounded(0.0, ge=0)
    class_depth_weight: float = bounded(0.0, ge=0)
    class_balance: bool | float = False
    init_from: str | None = None
    d_freeze: int = bounded(0, ge=0)
    collapse_share: float = 0.5
    eval_c2st: bool = False

    def _validate_cycle(self) -> None:
        """The cycle family's section and the keys it does not use."""
        c = self.cycle
        if self.model.family != "cycle":
            if c is not None:
                raise MedganError("config: a 'cycle' section is only allowed with model.family 'cycle'")
            return
        if c is None:
            raise MedganError("config: model.family 'cycle' needs a 'cycle' section (source_class and target_class, "
                              "or target_data)")
        classes = c.source_class is not None or c.target_class is not None
        if classes == (c.target_data is not None):
            raise MedganError("config: the 'cycle' section needs either source_class and target_class (two classes "
                              "of data) or target_data (a second dataset), not both")
        if classes and (c.source_class is None or c.target_class is None):
            raise MedganError("config: class translation needs both cycle.source_class and cycle.target_class")
        if self.progressive is not None:
            raise MedganError("config: a 'progressive' section is only allowed with model.family 'progressive'")
        if self.steps is None:
            raise MedganError("config key 'steps' must be set for model.family 'cycle'")
        for key in ("spectral_weight", "aux_weight", "lecam_weight", "recon_weight", "unet_weight", "class_mean_weight",
                    "class_depth_weight"):
            if getattr(self, key) != 0:
                raise MedganError(f"config: {key} applies to the adversarial families, not model.family 'cycle'")
        if self.d_steps != 1 or self.r1_gamma != 0 or self.fid_every != 0:
            raise MedganError("config: model.family 'cycle' makes one D update per step without R1, and its FID "
                              "during training is not defined; set d_steps: 1, r1_gamma: 0 and fid_every: 0")
        m = self.model
        if m.g_upsample != "nearest" or m.g_noise or m.g_sle or m.g_floor or not m.d_spectral_norm or m.d_mbstd:
            raise MedganError("config: model.g_upsample, g_noise, g_sle, g_floor, d_spectral_norm and d_mbstd apply to "
                              "model.family 'residual' only")
        for key in ("cycle_weight", "identity_weight"):
            if not 0 <= getattr(c, key) < float("inf"):
                raise MedganError(f"config key 'cycle.{key}' must be >= 0, got {getattr(c, key)}")
        if c.g_down < 1 or c.g_blocks < 0 or c.d_layers < 1:
            raise MedganError(f"config keys 'cycle.g_down' and 'cycle.d_layers' must be >= 1 and 'cycle.g_blocks' >= 0, "
                              f"got {c.g_down}, {c.d_layers}, {c.g_blocks}")

    def validate(self) -> None:
        """Every field in its range (declared beside the field, :func:`medgan.configio.check_fields`),
        then the cross-field checks; raises :class:`MedganError` with the key at fault."""
        check_fields(self)
        if len(self.betas) != 2:
            raise MedganError(f"config key 'betas' must be two numbers in [0, 1), got {self.betas}")
        bad = [p for p in self.augment.policy if p not in AUGMENT_OPS]
        if bad:
            raise MedganError(f"config key 'augment.policy': unknown op '{bad[0]}' (allowed: {', '.join(sorted(AUGMENT_OPS))})")
        self.model.family = canonical_family(self.model.family)  # type: ignore[assignment]
        if self.model.family == "progressive" and self.progressive is None:
            raise MedganError("config: model.family 'progressive' needs a 'progressive' schedule section")
        residual_only = (self.model.g_upsample != "nearest", self.model.g_binary, self.model.g_noise,
                         not self.model.d_spectral_norm, self.model.d_mbstd, self.model.d_highpass,
                         self.model.g_supersample != 1, self.model.g_sle, self.model.g_floor)
        if self.model.family == "progressive" and any(residual_only):
            raise MedganError("config: model.g_upsample, g_binary, g_noise, g_supersample, g_sle, g_floor, d_spectral_norm, "
                              "d_mbstd and d_highpass apply to model.family 'residual' only")
        if self.model.g_supersample_filter != "area" and self.model.g_supersample == 1:
            raise MedganError("config key 'model.g_supersample_filter' needs model.g_supersample > 1 (it resizes its output down)")
        if self.model.g_floor and self.model.g_binary:
            raise MedganError("config: model.g_floor and model.g_binary exclude each other (a binary mask has no dark floor)")
        if self.model.family == "residual" and self.progressive is not None:
            raise MedganError("config: a 'progressive' section is only allowed with model.family 'progressive'")
        if self.model.family == "residual" and self.steps is None:
            raise MedganError("config key 'steps' must be set for model.family 'residual'")
        if self.model.g_noise_map and not self.model.g_noise:
            raise MedganError("config key 'model.g_noise_map' needs model.g_noise: true (it scales the noise maps per position)")
        if self.model.g_noise_init > 0 and not self.model.g_noise:
            raise MedganError("config key 'model.g_noise_init' needs model.g_noise: true (it starts the noise strengths)")
        if self.model.g_class_input and (self.model.family != "residual" or not self.model.conditional):
            raise MedganError("config key 'model.g_class_input' needs model.family 'residual' and model.conditional: true")
        if self.model.g_keep_largest and not self.model.g_binary:
            raise MedganError("config key 'model.g_keep_largest' needs model.g_binary: true (it cleans binary masks)")
        if self.model.g_smooth and (not self.model.g_binary or self.model.family != "residual"):
            raise MedganError("config key 'model.g_smooth' needs model.family 'residual' and model.g_binary: true "
                              "(it smooths the field whose sign is the mask)")
        if self.model.g_stochastic and (not self.model.g_binary or self.model.family != "residual"):
            raise MedganError("config key 'model.g_stochastic' needs model.family 'residual' and model.g_binary: true "
                              "(it draws the mask's sign at random in training)")
        if self.model.d_proj_weight != 1.0 and (self.model.family != "residual" or not self.model.conditional):
            raise MedganError("config key 'model.d_proj_weight' needs model.family 'residual' and model.conditional: true "
                              "(it scales the projection discriminator's class term)")
        if self.model.d_depth and (not self.model.g_binary or self.model.family != "residual"):
            raise MedganError("config key 'model.d_depth' needs model.family 'residual' and model.g_binary: true "
                              "(it reads how deep inside a binary mask each voxel lies)")
        if self.select_checkpoint and not (self.model.g_binary and self.model.conditional):
            raise MedganError("config key 'select_checkpoint' needs model.g_binary: true and model.conditional: true "
                              "(it ranks checkpoints by how near their masks' class sizes and pieces lie to the real ones)")
        if self.model.g_recentre and (not self.model.g_binary or self.model.family != "residual"):
            raise MedganError("config key 'model.g_recentre' needs model.family 'residual' and model.g_binary: true "
                              "(it moves binary masks)")
        if not 0.0 <= float(self.class_balance) <= 1.0:
            raise MedganError(f"config key 'class_balance' is {self.class_balance}; use a power in [0, 1] "
                              "(0 = the split's class mix, 1 = every class equally often)")
        if self.class_balance and (self.model.family == "cycle" or not self.model.conditional):
            raise MedganError("config key 'class_balance' needs a conditional model of an adversarial family "
                              "(the cycle family draws its two domains itself)")
        if self.aux_weight > 0 and (self.model.family == "progressive" or not self.model.conditional):
            raise MedganError("config key 'aux_weight' needs a conditional model of family 'residual' or 'style'")
        if self.class_mean_weight > 0 and not self.model.conditional:
            raise MedganError("config key 'class_mean_weight' needs a conditional model (it matches each class's mean)")
        if self.class_depth_weight > 0 and not self.model.conditional:
            raise MedganError("config key 'class_depth_weight' needs a conditional model (it matches each class's "
                              "thickness)")
        if self.aux_twin and self.aux_weight == 0:
            raise MedganError("config key 'aux_twin' needs aux_weight > 0 (the twin sits beside the auxiliary classifier)")
        if self.aux_loss == "d2dce" and (self.aux_weight == 0 or self.aux_twin or self.model.family != "residual"):
            raise MedganError("config key 'aux_loss: d2dce' needs aux_weight > 0, aux_twin: false and model.family "
                              "'residual'")
        if self.d_freeze and self.model.family != "residual":
            raise MedganError("config key 'd_freeze' needs model.family 'residual' (it freezes D's first blocks)")
        if self.recon_weight > 0 and self.model.family in ("progressive", "style"):
            raise MedganError("config key 'recon_weight' needs model.family 'residual' (its discriminator has the decoder)")
        if self.unet_weight > 0 and self.model.family in ("progressive", "style"):
            raise MedganError("config key 'unet_weight' needs model.family 'residual' (its discriminator has the U-Net "
                              "decoder)")
        if self.unet_cutmix > 0 and (self.unet_weight == 0 or self.loss == "wgan-gp"):
            raise MedganError("config key 'unet_cutmix' needs unet_weight > 0 and loss 'hinge' or 'nonsaturating'")
        self._validate_per_class()
        self._validate_cycle()
        self._validate_style()

    def _validate_per_class(self) -> None:
        """``per_class``: a conditional residual model whose classes can be trained apart."""
        if not self.per_class:
            return
        if self.model.family != "residual" or not self.model.conditional:
            raise MedganError("config key 'per_class' needs model.family 'residual' and model.conditional: true (it "
                              "trains one unconditional GAN per class and samples class c from class c's own)")
        shared = {"class_balance": bool(self.class_balance), "aux_weight": self.aux_weight > 0,
                  "class_mean_weight": self.class_mean_weight > 0, "class_depth_weight": self.class_depth_weight > 0,
                  "model.d_proj_weight": self.model.d_proj_weight != 1.0, "model.g_class_input": self.model.g_class_input,
                  "init_from": self.init_from is not None}
        if self.logger != "jsonl":
            raise MedganError("config key 'per_class' logs each class GAN to its own metrics.jsonl; TensorBoard "
                              "(logger: tensorboard) is not supported with it")
        on = [k for k, v in shared.items() if v]
        if on:
            raise MedganError(f"config key 'per_class' trains each class's GAN apart, so '{on[0]}' (which acts on one "
                              "model shared by the classes, or starts it from a checkpoint) cannot apply; leave it at "
                              "its default")

    def _validate_style(self) -> None:
        """The keys of the style family, path-length regularisation and the collapse alarm."""
        m = self.model
        if m.w_dim <= 0 or m.mapping_layers <= 0:
            raise MedganError("config keys 'model.w_dim' and 'model.mapping_layers' must be positive")
        if m.g_output not in STYLE_OUTPUTS:
            raise MedganError(f"config key 'model.g_output' must be one of {', '.join(STYLE_OUTPUTS)}, got {m.g_output!r}")
        if m.family == "style":
            if self.progressive is not None:
                raise MedganError("config: a 'progressive' section is only allowed with model.family 'progressive'")
            if self.steps is None:
                raise MedganError("config key 'steps' must be set for model.family 'style'")
            if m.g_upsample != "nearest" or m.g_noise or m.g_supersample != 1 or m.g_sle or m.g_floor:
                raise MedganError("config: model.g_upsample, g_noise, g_supersample, g_sle and g_floor apply to "
                                  "model.family 'residual' only (the style generator has its own noise inputs)")
        if not (self.pl_weight >= 0 and self.pl_weight < float("inf")):
            raise MedganError(f"config key 'pl_weight' must be >= 0, got {self.pl_weight}")
        if self.pl_every <= 0:
            raise MedganError(f"config key 'pl_every' must be positive, got {self.pl_every}")
        if not 0.0 <= self.collapse_share < 1.0:
            raise MedganError(f"config key 'collapse_share' must be in [0, 1), got {self.collapse_share}")
        bad = [m for m in self.eval_metrics if m not in EVAL_METRICS]
        if bad:
            raise MedganError(f"config key 'eval_metrics': unknown metric '{bad[0]}' (allowed: {', '.join(EVAL_METRICS)})")
        if self.eval_c2st and not self.fid_every:
            raise MedganError("config key 'eval_c2st' runs at each evaluation: set fid_every > 0 as well")


RESUME_MAY_CHANGE = ("data", "out", "steps", "device", "threads", "log_every", "sample_every", "checkpoint_every",
                     "keep_checkpoints", "select_checkpoint", "fid_every", "fid_samples", "eval_metrics", "eval_c2st", "logger")
"""What a resumed run may change: how far it trains, where and how fast it runs, how often it reports
(``data`` names the dataset; its content is checked against the checkpoint's)."""


def resume_conflicts(saved: Mapping[str, Any], cfg: TrainConfig) -> list[str]:
    """The dotted keys in which ``cfg`` differs from ``saved`` (a checkpoint's ``config``), outside
    :data:`RESUME_MAY_CHANGE`: a run resumed with them would not continue exactly (the batch order,
    for one, is a function of ``seed``). A key that ``saved`` lacks (a field added since) is not one.
    """
    old = flatten_keys(saved)
    new = flatten_keys(config_to_dict(cfg))
    return sorted(k for k in old.keys() & new.keys()
                  if k.split(".")[0] not in RESUME_MAY_CHANGE and old[k] != new[k])
