"""Train a detector with the paper's recipe (blur + JPEG augmentation, Adam 1e-4, lr / 10 on a
validation plateau down to 1e-6, best epoch kept, resumable, seeded) on
<root>/{train,val}/[<class>/]{0_real,1_fake}. See docs/training.md."""
from .common import script_command

add_arguments, run = script_command("train")
