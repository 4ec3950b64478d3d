"""The pinned packages of `benchmarks/langs_real.py`: the scored set and the classifier's training set (issue 19).

Other packages in the two sets, none in both, so the scored figures are on packages the model never saw.
"""

from __future__ import annotations

import sys

PACKAGES = {  # the set scored here
    "deb": """
hello=2.10-3 jq=1.6-2.1+deb12u2 lua5.4=5.4.4-3+deb12u1 fmtlib=9.1.0+ds1-2 tinyxml2=9.0.0+dfsg-3.1
gnustep-base=1.28.1+really1.28.0-5 libtry-tiny-perl=0.31-2 libjson-xs-perl=4.040-1~deb12u1
libtext-csv-perl=2.02-2 libmoose-perl=2.2203-1 gprolog=1.4.5.0-3 haskell-split=0.2.3.5-1
haskell-aeson=2.0.3.0-1 ocaml-re=1.10.4-1 menhir=20220210+ds-2 ocaml-sexplib0=0.15.1-1
golang-github-spf13-cobra=1.6.1-1 golang-testify=1.8.1-1 golang-github-google-go-cmp=0.5.9-1
php-psr-log=1.1.4-2 php-twig=3.5.1-1+deb12u3 composer=2.5.5-1+deb12u5 junit4=4.13.2-3 libjsoup-java=1.15.3-1
tcllib=1.21+dfsg-1 expect=5.45.4-2 r-cran-ggplot2=3.4.1+dfsg-1 lapack=3.11.0-2 minpack=19961126+dfsg1-5
nasm=2.16.01-1 x264=2:0.164.3095+gitbaee400-3 ghdl=2.0.0+dfsg-6.2 thrift=0.17.0-2 capnproto=0.9.2-2
jsonnet=0.18.0+ds-3 elixir-lang=1.14.0.dfsg-2 gawk=1:5.2.1-2 glslang=12.0.0-2 wabt=1.0.32-1 scala=2.11.12-5
groovy=2.4.21-8 vala=0.56.3-1 bison=2:3.8.2+dfsg-1 flex=2.6.4-8.2 m4=1.4.19-3 autoconf=2.71-3 tmux=3.3a-3
zsh=5.9-4 fish=3.6.0-3.1+deb12u1 nginx=1.22.1-9+deb12u9 cmark=0.30.2-6 gnuplot=5.4.4+dfsg1-2 ocaml=4.13.1-4
coq=8.16.1+dfsg-1 agda=2.6.2.2-1.1 ecl=21.2.1+ds-4 newlisp=10.7.5-2 verilator=5.006-3 yosys=0.23-6
protobuf=3.21.12-3+deb12u1 ninja-build=1.11.1-2~deb12u1 redis=5:7.0.15-1~deb12u7
""",
    # binary packages that ship source text (Lisp, Emacs Lisp, Vim script, Octave, Rust crates, Ruby, ...),
    # where the source package is not on the mirror
    "debbin": """
elpa-dash=2.19.1+git20220608.1.0ac1ecf+dfsg-1 elpa-magit=3.3.0-2 cl-alexandria=20211025.gita67c3a6-1
cl-ppcre=20220126.gitb4056c5-1 slib=3b6-3 lua-penlight=1.13.1-3 vim-airline=0.11-2 vim-ale=3.3.0-1
octave-signal=1.4.3-1 octave-statistics=1.5.3-2 puppet-module-puppetlabs-stdlib=8.5.0-1 gforth-lib=0.7.3+dfsg-9+b3
postgresql-15-pgtap=1.2.0-3 libtirpc-dev=1.3.3+ds-1 ruby-rack=2.2.22-0+deb12u2 ruby-thor=1.2.1-2
ruby-sinatra=3.0.5-3+deb12u1 librust-regex-dev=1.7.1-1 librust-serde-dev=1.0.152-2 latexmk=1:4.79-1
agda-stdlib=1.7.1-1 haxe=1:4.2.5-1 erlang-jiffy=1.1.1-1 yaws=2.1.1+dfsg-2 coffeescript=2.7.0-4
libclblast-dev=1.5.3-3 iverilog=11.0-1.1+b1 tcl-tclreadline=2.3.8-1
gap-io=4.8.0+ds-1 cucumber=2.4.0-4 libgee-0.8-dev=0.20.6-1 meson=1.0.1-5 bash-completion=1:2.11-6
jekyll=4.3.1+dfsg-3+deb12u1 ruby-asciidoctor=2.0.18-2 picolisp=23.2-1 crystal=1.6.0+dfsg-3 xotcl=1.6.8-5 rakudo=2022.12-1
yacas=1.3.6-2.1
""",
    "pypi": """
requests==2.32.3 flask==3.0.3 click==8.1.7 attrs==23.2.0 PyYAML==6.0.1 msgpack==1.0.8 Jinja2==3.1.4
docutils==0.21.2 MarkupSafe==2.1.5 cffi==1.16.0 lxml==5.2.2 bottle==0.12.25 tornado==6.4.1
mkdocs==1.6.0 pybind11==2.12.0 psutil==5.9.8 ujson==5.10.0 Cython==3.0.10 Django==5.0.6
""",
    "npm": """
lodash@4.17.21 express@4.19.2 react@18.3.1 rxjs@7.8.1 zod@3.23.8 bootstrap@5.3.3 less@4.2.0
handlebars@4.7.8 @openzeppelin/contracts@5.0.2 vue@3.4.27 svelte@4.2.17 stylus@0.63.0 moment@2.30.1
chalk@5.3.0 axios@1.7.2 jquery@3.7.1 graphql@16.8.1 highlight.js@11.9.0 @types/node@20.12.12
""",
}
# The classifier's real-file training set (`--set train`; `python -m langs.train --real CACHE/labels.jsonl`): other
# packages from the same registries, none of them in PACKAGES.
TRAIN_PACKAGES = {  # source packages whose archives this mirror lacks (yasm, arpack, r-cran-*, ...) are left out
    "deb": """
libyaml=0.2.5-1 lz4=1.9.4-1 jansson=2.14-2 libuv1=1.44.2-1+deb12u1 pcre2=10.42-1 yaml-cpp=0.7.0+dfsg-8
googletest=1.12.1-0.2 cli11=2.1.2+ds-1 spdlog=1:1.10.0+ds-0.4 libdatetime-perl=2:1.59-1 libwww-perl=6.68-1
libpath-tiny-perl=0.144-1 libmojolicious-perl=9.31+dfsg-1 haskell-vector=0.12.3.1-1
haskell-optparse-applicative=0.16.1.0-1 haskell-megaparsec=9.2.2-1 cmdliner=1.1.1-1 ocaml-fmt=0.9.0-2 lwt=5.6.1-1
golang-github-pkg-errors=0.9.1-2 golang-gopkg-yaml.v3=3.0.1-3 php-league-commonmark=2.3.9-1+deb12u1
php-monolog=2.9.1-1 jackson-core=2.14.1-2~deb12u1 luarocks=3.8.0+dfsg1-1 lua-lpeg=1.0.2-2
libxml2=2.9.14+dfsg-1.3~deb12u6 cjson=1.7.15-1+deb12u4 tcl8.6=8.6.13+dfsg-2
""",
    "debbin": """
vim-syntastic=3.10.0-3 vim-ctrlp=1.81+git20220803-1 vim-tabular=1.0-8 vim-snippets=1.0.0-8
vim-youcompleteme=0+20230109+git7620d87+ds-3 vim-fugitive=3.7-1 octave-control=3.4.0-3 octave-image=2.14.0-4
octave-optim=1.6.2-3 octave-io=2.6.4-3 elpa-markdown-mode=2.5-1 elpa-projectile=2.7.0-2 elpa-company=0.9.13-2
elpa-flycheck=32~git.20200527.9c435db3-4 elpa-yasnippet=0.14.0+git20200603.5cbdbf0d-2 cl-babel=20200719.gitf892d05-2
cl-split-sequence=1:2.0.1-1 cl-bordeaux-threads=0.8.8-5 ruby-i18n=1.10.0-2 ruby-mustache=1.1.1-2 ruby-kramdown=2.4.0-2
ruby-rspec-core=3.12.0c0e1m1s0-1 librust-rand-dev=0.8.5-1 librust-serde-json-dev=1.0.87-1 librust-clap-dev=4.0.32-1
librust-log-dev=0.4.17-3 librust-itertools-dev=0.10.3-1 librust-anyhow-dev=1.0.69-1
puppet-module-puppetlabs-apt=9.0.1-1 puppet-module-puppetlabs-concat=7.3.1-2 gap-autpgrp=1.11-1 gap-core=4.12.1-2
swi-prolog-nox=9.0.4+dfsg-2 erlang-src=1:25.2.3+dfsg-1+deb12u4 sbcl-source=2:2.2.9-1 nim=1.6.10-2
node-commander=9.4.1-1 node-semver=7.3.5+~7.3.9-2 php-symfony-console=5.4.53+dfsg-0+deb12u1
libjs-jquery-ui=1.13.2+dfsg-1 elpa-ess=18.10.2+git20220915.f45542e-3 lilypond-data=2.24.1-2 ocaml-man=4.13.1-4
texlive-latex-base=2022.20230122-3 tcl8.6-dev=8.6.13+dfsg-2 racket-common=8.7+dfsg1-1 maxima-share=5.46.0-11
golang-1.19-src=1.19.8-2 lua-busted=2.1.1-1 lua-ldoc=1.4.6-2 bats=1.8.2-1 neofetch=7.1.0-4
zsh-syntax-highlighting=0.7.1-2 rake=13.0.6-3 guile-3.0-libs=3.0.8-2 php-nikic-fast-route=1.3.0-4
""",
    "pypi": """
six==1.17.0 packaging==26.4 pytest==9.2.0 Sphinx==9.0.4 Pygments==2.21.0 rich==15.0.0 httpx==0.29.0
SQLAlchemy==2.1.9 Markdown==3.11.4 mypy==2.4.1 beautifulsoup4==4.15.0 sympy==1.14.0 networkx==3.6.1
pyparsing==3.3.3 toml==0.10.2 jsonschema==4.26.0 alembic==1.20.1
""",
    "npm": """
typescript@7.0.2 webpack@5.113.0 eslint@10.16.0 prettier@3.10.2 underscore@1.13.8 d3@7.9.2 three@0.187.0
marked@18.3.0 commander@15.1.0 yargs@18.2.0 ajv@8.20.0 semver@7.8.6 immer@11.2.14 redux@5.0.1 @angular/core@22.2.6
@babel/core@8.1.4 sass@1.108.2 postcss@8.5.34 tailwindcss@4.3.5 dayjs@1.11.23
""",
}
SETS = {"eval": PACKAGES, "train": TRAIN_PACKAGES}


def packages(which: str = "eval") -> list[tuple[str, str, str]]:
    """(source, name, version) of every pinned package of a set; a package in both sets stops the script."""
    out: dict[str, list] = {}
    for key, packages_of in SETS.items():
        out[key] = []
        for source, text in packages_of.items():
            sep = {"deb": "=", "debbin": "=", "pypi": "==", "npm": "@"}[source]
            out[key] += [(source, *spec.rsplit(sep, 1)) for spec in text.split()]
    both = {n for _, n, _ in out["eval"]} & {n for _, n, _ in out["train"]}
    if both:
        sys.exit(f"in both package sets: {', '.join(sorted(both))}")
    return out[which]
