import pytest
import torch

from diffmodel.config import DiffusionConfig
from diffmodel.model.diffusion import Schedule, noisy_input, sample, timesteps, training_loss
from diffmodel.model.tasks import Inpainting


def clean_images(batch=2, size=8, seed=0):
    """Targets strictly inside [-1, 1], so the samplers' clipping of y0 never bites."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=generator) * 1.8 - 0.9


def perfect_denoiser(y0):
    """A model that knows y0, so it returns the true noise of whatever y_t it is given."""

    def model(x, gamma):
        g = gamma.double().view(-1, 1, 1, 1)
        y_t = x[:, 3:].double()
        return ((y_t - g.sqrt() * y0) / (1 - g).sqrt()).float()

    return model


def recording(model, calls):
    def wrapped(x, gamma):
        calls.append((x.clone(), gamma.clone()))
        return model(x, gamma)

    return wrapped


def some_model(x, gamma):
    """A fixed, input-dependent stand-in for a network."""
    return torch.tanh(x[:, 3:] + 0.3 * x[:, :3]) * (1 - gamma.view(-1, 1, 1, 1))


# ----------------------------------------------------------------------------- schedule

def test_gammas_are_the_cumulative_product_of_a_linear_beta_schedule():
    cfg = DiffusionConfig(steps=1000, beta_start=1e-4, beta_end=0.02)
    schedule = Schedule(cfg)
    expected = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), dim=0)
    assert schedule.gammas.shape == (1001,)
    assert schedule.gammas[0] == 1.0
    assert torch.allclose(schedule.gammas[1:], expected, rtol=1e-12, atol=0)
    assert torch.all(schedule.gammas[1:] < schedule.gammas[:-1])  # strictly decreasing
    assert schedule.gammas[-1] < 1e-4  # the last step is (almost) pure noise


def test_sample_gamma_is_uniform_over_steps_and_within_each_step():
    schedule = Schedule(DiffusionConfig(prediction="eps", steps=5, beta_start=0.05, beta_end=0.3))
    gammas = schedule.gammas
    n = 50_000
    drawn = schedule.sample_gamma(n, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert drawn.shape == (n,) and drawn.dtype == torch.float32
    drawn = drawn.double()
    assert torch.all(drawn >= gammas[-1] - 1e-6) and torch.all(drawn <= 1 + 1e-6)
    # step t owns the interval [gamma_t, gamma_{t-1}]
    step = torch.searchsorted(-gammas, -drawn).clamp(1, 5)
    low, high = gammas[step], gammas[step - 1]
    assert torch.all(drawn >= low - 1e-6) and torch.all(drawn <= high + 1e-6)
    counts = torch.bincount(step, minlength=6)[1:].double()
    assert torch.all((counts / n - 0.2).abs() < 0.01)
    position = ((drawn - low) / (high - low)).clamp(0, 1)
    for t in range(1, 6):
        inside = position[step == t]
        assert abs(inside.mean().item() - 0.5) < 0.02
        assert abs((inside < 0.25).double().mean().item() - 0.25) < 0.02


# ----------------------------------------------------------------------------- samplers

def test_one_ddim_step_with_the_true_noise_recovers_y0():
    schedule = Schedule(DiffusionConfig(prediction="eps", steps=1000))
    y0 = clean_images()
    g = schedule.gammas[-1].item()
    # The sampler starts from randn with this generator; that start is y_T = sqrt(g) y0 + sqrt(1 - g) eps
    start = torch.randn(y0.shape, generator=torch.Generator().manual_seed(3))
    eps = (start - g**0.5 * y0) / (1 - g) ** 0.5
    calls = []
    model = recording(lambda x, gamma: eps, calls)
    out, _ = sample(model, schedule, torch.zeros_like(y0), torch.ones(2, 1, 8, 8), steps=1,
                    generator=torch.Generator().manual_seed(3))
    assert len(calls) == 1
    assert torch.equal(calls[0][0][:, 3:], start)  # the model saw y_T
    assert torch.allclose(calls[0][1], torch.full((2,), g))
    assert torch.allclose(out, y0, atol=1e-4)


def test_ddim_keeps_the_true_noise_consistent_over_many_steps():
    # eta = 0 moves y_t along sqrt(g) y0 + sqrt(1 - g) eps with the same eps, so a model that
    # always returns that eps lands on y0 however many steps are taken
    schedule = Schedule(DiffusionConfig(prediction="eps", steps=1000))
    y0 = clean_images(seed=1)
    g = schedule.gammas[-1].item()
    start = torch.randn(y0.shape, generator=torch.Generator().manual_seed(4))
    eps = (start - g**0.5 * y0) / (1 - g) ** 0.5
    out, _ = sample(lambda x, gamma: eps, schedule, torch.zeros_like(y0), torch.ones(2, 1, 8, 8), steps=20,
                    generator=torch.Generator().manual_seed(4))
    assert torch.allclose(out, y0, atol=1e-4)


@pytest.mark.parametrize("sampler,eta", [("ddim", 0.0), ("ddim", 1.0), ("ddpm", 0.0)])
def test_a_perfect_denoiser_recovers_y0_with_every_sampler(sampler, eta):
    schedule = Schedule(DiffusionConfig(prediction="eps", steps=100, beta_start=1e-3, beta_end=0.1))
    y0 = clean_images(seed=2)
    out, _ = sample(perfect_denoiser(y0), schedule, torch.zeros_like(y0), torch.ones(2, 1, 8, 8),
                    sampler=sampler, steps=10, eta=eta, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, y0, atol=1e-4)


def test_ddim_visits_steps_evenly_spaced_noise_levels_and_ddpm_all_of_them():
    schedule = Schedule(DiffusionConfig(prediction="eps", steps=100))
    condition, mask = torch.zeros(1, 3, 8, 8), torch.ones(1, 1, 8, 8)
    for steps in (1, 7, 25, 100):
        calls = []
        sample(recording(some_model, calls), schedule, condition, mask, steps=steps,
               generator=torch.Generator().manual_seed(0))
        visited = timesteps(schedule, "ddim", steps)
        assert len(calls) == len(visited) == steps
        assert visited[0] == 100 and visited == sorted(set(visited), reverse=True)
        assert [c[1].item() for c in calls] == pytest.approx([schedule.gammas[t].item() for t in visited])
    calls = []
    sample(recording(some_model, calls), schedule, condition, mask, sampler="ddpm", steps=5,
           generator=torch.Generator().manual_seed(0))
    assert len(calls) == 100
    assert [c[1].item() for c in calls] == pytest.approx(schedule.gammas[1:].flip(0).tolist())
    assert timesteps(schedule, "ddim", 500) == list(range(100, 0, -1))  # never more than the schedule


def test_ddim_with_eta_zero_and_a_seed_is_deterministic():
    schedule = Schedule(DiffusionConfig(prediction="eps", steps=50))
    condition = clean_images(seed=5)
    mask = torch.ones(2, 1, 8, 8)

    def run(seed, eta=0.0):
        torch.manual_seed(seed + 100)  # the global RNG must not matter
        return sample(some_model, schedule, condition, mask, steps=10, eta=eta,
                      generator=torch.Generator().manual_seed(seed))[0]

    assert torch.equal(run(0), run(0))
    assert not torch.allclose(run(0), run(1))
    assert torch.equal(run(0, eta=1.0), run(0, eta=1.0))
    assert not torch.allclose(run(0), run(0, eta=1.0))  # eta > 0 does add fresh noise


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_inpainting_sampling_keeps_the_known_region_exactly(sampler):
    schedule = Schedule(DiffusionConfig(prediction="eps", steps=30))
    y0 = clean_images(batch=3, size=16, seed=6)
    condition, mask = Inpainting().degrade(y0, torch.Generator().manual_seed(0))
    known = y0 * (1 - mask)
    out, frames = sample(some_model, schedule, condition, mask, known=known, sampler=sampler, steps=6, eta=0.5,
                         generator=torch.Generator().manual_seed(1), keep_frames=4)
    outside = (mask == 0).expand_as(y0)
    for y in [out, *frames]:
        assert torch.equal(y[outside], y0[outside])
    assert not torch.allclose(out[~outside], y0[~outside])  # the hole is generated, not copied


def test_keep_frames_returns_the_requested_number_of_frames():
    schedule = Schedule(DiffusionConfig(prediction="eps", steps=40))
    condition, mask = clean_images(seed=7), torch.ones(2, 1, 8, 8)
    for keep in (1, 2, 5, 11):
        out, frames = sample(some_model, schedule, condition, mask, steps=10,
                             generator=torch.Generator().manual_seed(0), keep_frames=keep)
        assert len(frames) == keep
        assert all(f.shape == out.shape for f in frames)
        assert torch.equal(frames[-1], out)
    start = torch.randn(condition.shape, generator=torch.Generator().manual_seed(0))
    assert torch.equal(frames[0], start)  # the strip begins at the starting noise
    assert len({f.sum().item() for f in frames}) == len(frames)  # all different states
    # a 10-step DDIM run has only 11 states; more cannot be made up
    assert len(sample(some_model, schedule, condition, mask, steps=10, keep_frames=30)[1]) == 11
    assert sample(some_model, schedule, condition, mask, steps=10)[1] == []


# ----------------------------------------------------------------------------- training loss

def test_network_input_is_condition_and_noisy_target_with_clean_known_region():
    y0 = clean_images(size=16)
    condition, mask = Inpainting().degrade(y0, torch.Generator().manual_seed(0))
    gamma = torch.tensor([0.3, 0.7])
    noise = torch.randn(y0.shape, generator=torch.Generator().manual_seed(1))
    x = noisy_input(y0, condition, mask, gamma, noise)
    assert x.shape == (2, 6, 16, 16)
    assert torch.equal(x[:, :3], condition)
    g = gamma.view(-1, 1, 1, 1)
    expected = torch.where(mask.bool(), g.sqrt() * y0 + (1 - g).sqrt() * noise, y0)
    assert torch.allclose(x[:, 3:], expected)


@pytest.mark.parametrize("loss", ["l2", "l1"])
def test_training_loss_ignores_the_known_region(loss):
    schedule = Schedule(DiffusionConfig(prediction="eps", steps=100, loss=loss))
    y0 = clean_images(batch=4, size=16)
    condition, mask = Inpainting().degrade(y0, torch.Generator().manual_seed(0))

    def changed_outside(x, gamma):
        return some_model(x, gamma) + 5.0 * (1 - mask)

    def changed_inside(x, gamma):
        return some_model(x, gamma) + 0.5 * mask

    def loss_of(model):
        return training_loss(model, schedule, y0, condition, mask, torch.Generator().manual_seed(3))

    base = loss_of(some_model)
    assert loss_of(changed_outside) == base
    assert loss_of(changed_inside) != base


def test_training_loss_is_zero_only_for_the_noise_that_made_the_input():
    schedule = Schedule(DiffusionConfig(prediction="eps", steps=100))
    y0 = clean_images(batch=4, size=16)
    condition, mask = Inpainting().degrade(y0, torch.Generator().manual_seed(0))
    calls = []
    loss = training_loss(recording(perfect_denoiser(y0), calls), schedule, y0, condition, mask,
                         torch.Generator().manual_seed(1))
    assert loss.item() < 1e-8
    # the loss is the mean over the hole of squared noise error: predicting zeros costs about 1
    zero = training_loss(lambda x, g: torch.zeros_like(y0), schedule, y0, condition, mask, torch.Generator().manual_seed(1))
    assert 0.8 < zero.item() < 1.2
    assert torch.equal(calls[0][0][:, :3], condition)


def perfect_v_denoiser(y0):
    """A model that knows y0 and answers with v = sqrt(g) eps - sqrt(1 - g) y0."""

    def model(x, gamma):
        g = gamma.double().view(-1, 1, 1, 1)
        eps = (x[:, 3:].double() - g.sqrt() * y0) / (1 - g).sqrt()
        return (g.sqrt() * eps - (1 - g).sqrt() * y0).float()

    return model


@pytest.mark.parametrize("sampler,eta", [("ddim", 0.0), ("ddim", 1.0), ("ddpm", 0.0)])
def test_v_prediction_recovers_y0_with_every_sampler(sampler, eta):
    schedule = Schedule(DiffusionConfig(steps=100, beta_start=1e-3, beta_end=0.1, prediction="v"))
    y0 = clean_images(seed=2)
    out, _ = sample(perfect_v_denoiser(y0), schedule, torch.zeros_like(y0), torch.ones(2, 1, 8, 8),
                    sampler=sampler, steps=10, eta=eta, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, y0, atol=1e-4)


def test_v_prediction_loss_is_zero_only_for_the_true_v():
    schedule = Schedule(DiffusionConfig(steps=100, prediction="v"))
    y0 = clean_images(batch=4, size=16)
    condition, mask = Inpainting().degrade(y0, torch.Generator().manual_seed(0))
    assert training_loss(perfect_v_denoiser(y0), schedule, y0, condition, mask, torch.Generator().manual_seed(1)).item() < 1e-8
    # the eps of a v-model is wrong: the loss sees it
    assert training_loss(perfect_denoiser(y0), schedule, y0, condition, mask, torch.Generator().manual_seed(1)).item() > 0.01


# ----------------------------------------------------------------------------- sampler noise, against closed forms

def zero_target_denoiser(x, gamma):
    """The perfect eps-predictor for y0 = 0: y_t = sqrt(1 - g) eps, so eps = y_t / sqrt(1 - g)."""
    return x[:, 3:] / (1 - gamma.view(-1, 1, 1, 1)).sqrt()


def step_statistics(sampler, steps, eta, schedule):
    """For each sampling step t -> t_prev (t_prev > 0) of a perfect denoiser with y0 = 0: the
    regression slope of y_prev on y_t, its standard error, and the variance of what the slope
    leaves (the fresh noise)."""
    condition, mask = torch.zeros(256, 3, 8, 8), torch.ones(256, 1, 8, 8)
    visit = timesteps(schedule, sampler, steps)
    _, frames = sample(zero_target_denoiser, schedule, condition, mask, sampler=sampler, steps=steps, eta=eta,
                       generator=torch.Generator().manual_seed(0), keep_frames=len(visit) + 1)
    stats = {}
    for i, (t, t_prev) in enumerate(zip(visit, visit[1:])):
        y, y_prev = frames[i].double().flatten(), frames[i + 1].double().flatten()
        slope = (y * y_prev).sum() / (y * y).sum()
        noise_var = (y_prev - slope * y).var()
        stats[(t, t_prev)] = (slope.item(), (noise_var / (y * y).sum()).sqrt().item(), noise_var.item())
    return stats


def test_ddpm_adds_the_posterior_variance_of_ho_et_al():
    """DDPM (Ho et al. 2020, eq. 7): y_{t-1} = mean + sqrt(beta~_t) z with
    beta~_t = (1 - alpha-bar_{t-1}) / (1 - alpha-bar_t) * beta_t, written here from the betas."""
    cfg = DiffusionConfig(prediction="eps", steps=20, beta_start=0.01, beta_end=0.3)
    schedule = Schedule(cfg)
    betas = [cfg.beta_start + (cfg.beta_end - cfg.beta_start) * k / (cfg.steps - 1) for k in range(cfg.steps)]
    alpha_bar = [1.0]
    for beta in betas:
        alpha_bar.append(alpha_bar[-1] * (1 - beta))
    for (t, t_prev), (slope, slope_error, noise_var) in step_statistics("ddpm", 0, 0.0, schedule).items():
        assert t_prev == t - 1
        posterior_var = (1 - alpha_bar[t - 1]) / (1 - alpha_bar[t]) * betas[t - 1]
        assert noise_var == pytest.approx(posterior_var, rel=0.05)
        # with y0 = 0 the posterior mean is the eps term alone: sqrt(1 - ab_{t-1} - var) / sqrt(1 - ab_t) y_t
        assert slope == pytest.approx(((1 - alpha_bar[t - 1] - posterior_var) / (1 - alpha_bar[t])) ** 0.5, abs=5 * slope_error)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_noise_follows_song_et_al_eq_16(eta):
    """DDIM (Song et al. 2021, eq. 16) over a jump t -> s:
    sigma^2 = eta^2 (1 - a_s) / (1 - a_t) (1 - a_t / a_s), with a the cumulative alphas."""
    schedule = Schedule(DiffusionConfig(prediction="eps", steps=100, beta_start=1e-3, beta_end=0.1))
    a = schedule.gammas.tolist()
    for (t, s), (slope, slope_error, noise_var) in step_statistics("ddim", 5, eta, schedule).items():
        assert t - s > 1  # a real jump over several steps of the schedule
        sigma2 = eta**2 * (1 - a[s]) / (1 - a[t]) * (1 - a[t] / a[s])
        assert noise_var == pytest.approx(sigma2, rel=0.05, abs=1e-9)
        assert slope == pytest.approx(((1 - a[s] - sigma2) / (1 - a[t])) ** 0.5, abs=5 * slope_error + 1e-6)


# ----------------------------------------------------------------------------- min-SNR loss weighting

@pytest.mark.parametrize("prediction, gamma, weight", [
    ("v", 0.5, 0.5),  # SNR 1: min(1, 5) / (1 + 1)
    ("v", 10 / 11, 5 / 11),  # SNR 10: min(10, 5) / (10 + 1)
    ("v", 1 / 5, 0.2),  # SNR 1/4: min(1/4, 5) / (1/4 + 1)
    ("eps", 0.5, 1.0),  # SNR 1: min(1, 5) / 1
    ("eps", 10 / 11, 0.5),  # SNR 10: 5 / 10
    ("eps", 1 / 5, 1.0),  # SNR 1/4: (1/4) / (1/4)
])
def test_min_snr_weights_follow_hang_et_al(prediction, gamma, weight):
    from diffmodel.model.diffusion import loss_weights

    cfg = DiffusionConfig(prediction=prediction, weighting="min_snr", snr_gamma=5.0)
    assert loss_weights(torch.tensor([gamma], dtype=torch.float64), cfg).item() == pytest.approx(weight, rel=1e-12)


def test_the_min_snr_loss_weighs_each_image_by_its_noise_level():
    """A model whose v is off by a known constant: the weighted loss is the mean over images of
    min(SNR, 5) / (SNR + 1) times the squared error, with SNR = gamma / (1 - gamma) of each image."""
    schedule = Schedule(DiffusionConfig(steps=100, prediction="v", weighting="min_snr", snr_gamma=5.0))
    y0, error = clean_images(batch=6, size=8), 0.3
    gammas = []

    def off_by_error(x, gamma):
        gammas.append(gamma.double())
        return perfect_v_denoiser(y0)(x, gamma) + error

    condition, mask = torch.zeros_like(y0), torch.ones_like(y0[:, :1])  # every pixel generated
    loss = training_loss(off_by_error, schedule, y0, condition, mask, torch.Generator().manual_seed(2)).item()
    snr = gammas[0] / (1 - gammas[0])
    expected = (torch.clamp(snr, max=5.0) / (snr + 1)).mean().item() * error**2
    assert loss == pytest.approx(expected, rel=1e-4)
    uniform = Schedule(DiffusionConfig(steps=100, prediction="v"))
    assert training_loss(off_by_error, uniform, y0, condition, mask, torch.Generator().manual_seed(2)).item() == \
        pytest.approx(error**2, rel=1e-4)


@pytest.mark.parametrize("loss", ["l2", "l1"])
def test_the_loss_of_a_constant_prediction_is_its_mean_error_over_the_hole(loss):
    """eps-prediction answering 0.3 everywhere: the loss is mean(|0.3 - eps|) (l1) or mean((0.3 - eps)^2) (l2)
    over the hole's pixels, eps being the noise the generator draws after the noise level."""
    schedule = Schedule(DiffusionConfig(prediction="eps", steps=100, loss=loss))
    y0 = clean_images(batch=4, size=16)
    _, mask = Inpainting().degrade(y0, torch.Generator().manual_seed(0))
    value = training_loss(lambda x, g: torch.full_like(y0, 0.3), schedule, y0, y0, mask, torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(1)
    schedule.sample_gamma(4, generator, y0.device)
    eps = torch.randn(y0.shape, generator=generator)
    error = (0.3 - eps).abs() if loss == "l1" else (0.3 - eps) ** 2
    hole = mask.expand_as(y0)
    assert value.item() == pytest.approx((error * hole).sum().item() / hole.sum().item(), rel=1e-6)


def test_without_guidance_a_labelled_step_is_one_network_call_on_the_batch_and_guidance_doubles_it():
    from diffmodel.classes import NO_LABEL
    from diffmodel.model.diffusion import Guidance, denoise

    calls = []

    def network(x, gamma, labels=None):
        calls.append((x.shape[0], [t.tolist() for t in labels]))
        return torch.zeros_like(x)

    x, gamma = torch.zeros(3, 6, 4, 4), torch.ones(3)
    labels = (torch.tensor([0, 1, 2]), torch.tensor([0, 0, 1]))
    denoise(network, x, gamma, labels, Guidance())
    denoise(network, x, gamma, labels, Guidance("superclass", 1.5))
    denoise(network, x, gamma, labels, Guidance("cfg", 1.5))
    n = NO_LABEL
    assert calls == [(3, [[0, 1, 2], [0, 0, 1]]),
                     (6, [[0, 1, 2, n, n, n], [0, 0, 1, 0, 0, 1]]),  # reference: the superclass alone
                     (6, [[0, 1, 2, n, n, n], [0, 0, 1, n, n, n]])]  # reference: no label at all
