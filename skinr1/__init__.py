"""skinr1: Skin-R1 (arXiv 2511.14900) reimplemented: knowledge base, trajectory synthesis, SFT,
GRPO and evaluation of a vision-language model for dermatological diagnosis."""

import warnings

__version__ = "0.1.0"

# Warnings of the pinned libraries that say nothing about a run, filtered one by one (by their
# text) so that every other warning still reaches the reports: tqdm's notice that the kernel has
# no widget library, and one deprecation.
warnings.filterwarnings("ignore", message="IProgress not found")
# transformers 5.23 renames gradient checkpointing to activation checkpointing; 5.17, which the
# GPU stack pins, knows only the old names, so the project keeps them.
warnings.filterwarnings("ignore", message=r"`(is_)?gradient_checkpointing(_enable|_disable)?` is "
                        "deprecated", category=FutureWarning)  # fmt: skip
