# Entry points for a newcomer: `make demo` deploys the stack on a local EC2-like target,
# `make test` runs every test. Both run `make setup` first (idempotent).
.PHONY: setup images demo demo-down test lint sanity unit molecule build clean mutation usage-screenshot role-docs

setup:
	@scripts/setup.sh

images: setup
	@scripts/build-images.sh

demo: setup
	@scripts/demo.sh up

demo-down:
	@scripts/demo.sh down

test:
	@scripts/test.sh

lint:
	@scripts/test.sh lint

sanity:
	@scripts/test.sh sanity

unit:
	@scripts/test.sh pytest

molecule:
	@scripts/test.sh molecule

build:
	@scripts/test.sh build

# Role READMEs: regenerate the part between BEGIN_/END_ANSIBLE_DOCS from each role's meta/argument_specs.yml
# (aar-doc; `make lint` fails while a README is stale).
role-docs:
	@scripts/role-docs.sh

# Mutation testing of plugins/ with mutmut (slow; not part of `make test`): prints the mutation score.
mutation: setup
	@scripts/mutation.sh

# Screenshot of the usage report's chart page in headless Chromium (after playbooks/usage_report.yml):
# make usage-screenshot [USAGE_HTML=usage-report/usage.html] [USAGE_PNG=usage-report/usage.png]
usage-screenshot: setup
	@scripts/usage-screenshot.sh $(USAGE_HTML) $(USAGE_PNG)

clean: demo-down
	rm -rf .cache/dist
