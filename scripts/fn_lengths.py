#!/usr/bin/env python3
"""Functions in src/ longer than 80 lines (a brace counter: char literals such as '{' can miscount)."""
import re,sys,glob
out=[]
for f in glob.glob('src/**/*.rs',recursive=True):
    L=open(f).read().split('\n')
    i=0
    while i<len(L):
        m=re.match(r'\s*(pub(\([^)]*\))?\s+)?(async\s+)?fn\s+(\w+)',L[i])
        if m:
            depth=0;started=False;j=i
            while j<len(L):
                s=re.sub(r'"([^"\\]|\\.)*"','',L[j]); s=re.sub(r"//.*","",s)
                depth+=s.count('{')-s.count('}')
                if '{' in s: started=True
                if started and depth<=0: break
                if not started and s.rstrip().endswith(';'): break
                j+=1
            n=j-i+1
            if n>80: out.append((n,f,m.group(4)))
        i+=1
for n,f,name in sorted(out,reverse=True): print(n,f,name)
