"""docs/identify.md's torch recipe on a real training loop (tests/test_identify.py runs it in a subprocess)."""
import sys

import torch

from harness.base.recordings import Recorder

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4))
opt = torch.optim.RMSprop(model.parameters(), lr=0.01, alpha=0.9, momentum=0.5)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.5)  # the lr changes: its side of the buffer shows
x, y = torch.randn(64, 8), torch.randn(64, 4)

rec = Recorder({n: p.detach().numpy() for n, p in model.named_parameters()})
for _ in range(48):
    opt.zero_grad()
    torch.nn.functional.mse_loss(model(x), y).backward()
    lr = opt.param_groups[0]["lr"]
    opt.step()
    rec.step({n: p.grad.numpy() for n, p in model.named_parameters()},
             {n: p.detach().numpy() for n, p in model.named_parameters()}, lr)
    sched.step()
rec.save(sys.argv[1])
