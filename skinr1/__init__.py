"""skinr1: Skin-R1 (arXiv 2511.14900) reimplemented: knowledge base, trajectory synthesis, SFT,
GRPO and evaluation of a vision-language model for dermatological diagnosis."""

import warnings

__version__ = "0.1.0"

# Warnings of the pinned libraries that say nothing about a run, filtered one by one (by their
# text) so that every other warning still reaches the reports: tqdm's notice that the kernel has
# no widget library, and a deprecation the libraries raise inside their own calls.
warnings.filterwarnings("ignore", message="IProgress not found")
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated",
                        category=FutureWarning)  # fmt: skip
