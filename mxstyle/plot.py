"""Loss-curve plots (matplotlib, headless)."""


def plot_losses(history, path, x_key, keys=("loss", "content", "style", "tv", "saturation"), title=None):
    """Plot ``history`` (a list of dicts) as one log-scale curve per key into a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    xs = [h[x_key] for h in history]
    for key in keys:
        ys = [h[key] for h in history if key in h]
        if ys and max(ys) > 0:
            ax.plot(xs[: len(ys)], ys, label=key)
    ax.set_yscale("log")
    ax.set_xlabel(x_key)
    ax.set_ylabel("weighted loss")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
