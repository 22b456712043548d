# Thin wrapper over Meson. `make run` and `make test` install what is missing first.
PREFIX ?= /usr/local
prefix ?= $(PREFIX)
DESTDIR ?=
BUILD ?= build
ASAN_BUILD ?= build-asan
LISTEN ?= 127.0.0.1:8080
DB ?= sqlite:var/cockpit-tokens.db

NGINX_BUILD ?= build-nginx
NGINX_MODULE = ngx_http_cockpit_tokens_module.so
NGINX_MODULES_DIR ?= $(prefix)/lib/nginx/modules

.PHONY: all deps build build-asan run test demo bench install clean nginx-module \
	install-nginx-module

all: build

deps:
	@scripts/deps.sh test

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=release -Doptimization=2 --prefix=$(prefix)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(ASAN_BUILD)/build.ninja:
	CC=clang meson setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

build-asan: $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

run:
	@scripts/deps.sh run
	@$(MAKE) -s build
	@scripts/run.sh $(BUILD)/cockpit-tokens "$(LISTEN)" "$(DB)"

test: deps
	@scripts/test.sh

# libFuzzer targets (tests/fuzz/) in build-fuzz (clang, ASan+UBSan), FUZZ_SECONDS
# each from the committed seed corpora (`make fuzz FUZZ_TARGETS=fuzz_route` for one), then
# mutated HTTP requests against the ASan server for FUZZ_SECONDS.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz:
	tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)
	tests/fuzz/http_fuzz.sh . $(FUZZ_SECONDS)

demo:
	@TOKEN="$(TOKEN)" scripts/demo.sh

bench: build
	bench/create.sh
	bench/list.sh
	bench/verify.sh

# The nginx module needs nginx-dev (Debian's nginx sources and flags): built and
# installed when it is there, skipped with a note when it is not.
# PREFIX/prefix applies to every install, not only to the first `meson setup`.
install: build
	meson configure $(BUILD) --prefix=$(prefix) >/dev/null
	ninja -C $(BUILD) >/dev/null
	DESTDIR=$(DESTDIR) meson install -C $(BUILD) --no-rebuild
	@if [ -f /usr/share/nginx/src/conf_flags ]; then $(MAKE) -s install-nginx-module; \
	else echo "install: nginx-dev is not installed: the nginx module is skipped"; fi

# The module for the installed nginx (deploy/nginx-module/README.md).
nginx-module:
	@scripts/nginx-module.sh $(NGINX_BUILD)

# The module, and a modules-available snippet (Debian: link it into
# /etc/nginx/modules-enabled/ to load the module).
install-nginx-module: nginx-module
	install -D -m 0644 $(NGINX_BUILD)/$(NGINX_MODULE) $(DESTDIR)$(NGINX_MODULES_DIR)/$(NGINX_MODULE)
	install -d -m 0755 $(DESTDIR)$(prefix)/share/nginx/modules-available
	printf 'load_module %s;\n' "$(NGINX_MODULES_DIR)/$(NGINX_MODULE)" \
		>$(DESTDIR)$(prefix)/share/nginx/modules-available/mod-http-cockpit-tokens.conf

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz $(NGINX_BUILD)
