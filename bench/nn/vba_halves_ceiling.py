#!/usr/bin/env python3
# How accurately a small CNN can classify Fashion-MNIST images at three stages of the composite's
# preparation of y's left halves (docs/vba.md, "Fashion-MNIST composite"): a replica in PyTorch of
# composite.cc (rotation by U(-30, 30) degrees, squeeze of column pairs, Bernoulli binarisation).
# Usage: python3 bench/nn/vba_halves_ceiling.py full|grey|bin EPOCHS WIDTH [THREADS]
# Prints the held-out accuracy per epoch, the recall per class and the per-class label entropy
# (the floor of the conditioning entropy). Needs python3-torch; the images are read from
# $FASHION_MNIST_DIR (default /usr/share/datasets/fashion-mnist/). Not part of the test suite.
import os, gzip, torch, torch.nn as nn, torch.nn.functional as F, sys, time, math
torch.set_num_threads(int(sys.argv[4]) if len(sys.argv)>4 else 1)
D=os.environ.get('FASHION_MNIST_DIR', '/usr/share/datasets/fashion-mnist/').rstrip('/') + '/'
def imgs(f): return torch.frombuffer(bytearray(gzip.open(D+f).read()[16:]),dtype=torch.uint8).reshape(-1,784).float()/255
def labs(f): return torch.frombuffer(bytearray(gzip.open(D+f).read()[8:]),dtype=torch.uint8).long()
Xtr,Ytr=(imgs('train-images-idx3-ubyte.gz')),(labs('train-labels-idx1-ubyte.gz'))
Xte,Yte=(imgs('t10k-images-idx3-ubyte.gz')),(labs('t10k-labels-idx1-ubyte.gz'))
mode=sys.argv[1]  # bin | grey | full
epochs=int(sys.argv[2]); width=int(sys.argv[3])
g=torch.Generator().manual_seed(1)
def prep(x):
    b=x.shape[0]
    if mode=='full': return x.reshape(b,1,28,28)
    a=(torch.rand(b,generator=g)*2-1)*30*math.pi/180
    c,s,z=torch.cos(a),torch.sin(a),torch.zeros(b)
    th=torch.stack([torch.stack([c,-s,z],1),torch.stack([s,c,z],1)],1)
    grid=F.affine_grid(th,(b,1,28,28),align_corners=False)
    r=F.grid_sample(x.reshape(b,1,28,28),grid,mode='bilinear',padding_mode='zeros',align_corners=False)
    h=r.reshape(b,1,28,14,2).mean(-1).clamp(0,1)
    if mode=='bin': h=(torch.rand(h.shape,generator=g)<h).float()
    return h
w=width
W=14 if mode!='full' else 28
net=nn.Sequential(nn.Conv2d(1,w,3,padding=1),nn.ReLU(),nn.MaxPool2d(2),nn.Conv2d(w,2*w,3,padding=1),nn.ReLU(),nn.MaxPool2d(2),
  nn.Flatten(),nn.Dropout(0.3),nn.Linear(2*w*7*(W//4),128),nn.ReLU(),nn.Linear(128,10))
torch.manual_seed(0)
opt=torch.optim.Adam(net.parameters(),1e-3)
steps=epochs*600; sched=torch.optim.lr_scheduler.OneCycleLR(opt,3e-3,total_steps=steps)
Hte=prep(Xte)
for ep in range(epochs):
    t=time.time(); net.train(); H=prep(Xtr); perm=torch.randperm(60000,generator=g)
    for i in range(0,60000,100):
        idx=perm[i:i+100]; loss=F.cross_entropy(net(H[idx]),Ytr[idx]); opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    net.eval()
    with torch.no_grad(): p=net(Hte).argmax(1)
    print(mode,w,ep,'acc',(p==Yte).float().mean().item(),'%.0fs'%(time.time()-t),flush=True)
# per-class entropy floor
ent=0
for c in range(10):
    pc=p[Yte==c]; q=torch.bincount(pc,minlength=10).double(); q=q/q.sum(); ent+=-(q[q>0]*q[q>0].log()).sum().item()/10
    print(c,'recall %.3f'%(pc==c).float().mean().item())
print('floor entropy',ent)
