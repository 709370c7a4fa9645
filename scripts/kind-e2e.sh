#!/usr/bin/env bash
# End-to-end check of the CPU Experiments on a throwaway kind cluster.
#
#   scripts/kind-e2e.sh [up|test|down|all]      (default: all)
#
#   up    create the kind cluster (manifests/kind/cluster.yaml) and install Katib v0.19.0 standalone
#   test  build and load the CPU trainer image, lint the CPU manifests, run the Experiments, verify them
#   down  delete the cluster
#   all   up + test, then down (unless KEEP_CLUSTER=1), also when something fails
#
# Environment:
#   KIND_CLUSTER          cluster name (default: katib-hp); kubectl always targets context kind-$KIND_CLUSTER
#   KEEP_CLUSTER=1        keep the cluster after `all` (for debugging; `scripts/kind-e2e.sh down` removes it)
#   KATIB_READY_TIMEOUT   how long to wait for the Katib pods (kubectl duration, default: 15m)
#   EXPERIMENT_TIMEOUT_S  deadline per Experiment, in seconds (default: 2400)
#
# Needs docker, kind and kubectl, and network access at run time: the Katib manifests are fetched from
# GitHub by `kubectl apply -k`, and the node, Katib, MySQL and TensorFlow images are pulled.
# Exit status: 0 success, 1 a step or a verification failed, 2 a prerequisite is missing or bad usage.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT

CLUSTER_NAME="${KIND_CLUSTER:-katib-hp}"
readonly CLUSTER_NAME
readonly KUBE_CONTEXT="kind-${CLUSTER_NAME}"
readonly KIND_CONFIG="${ROOT}/manifests/kind/cluster.yaml"
readonly KATIB_INSTALL="github.com/kubeflow/katib.git/manifests/v1beta1/installs/katib-standalone?ref=v0.19.0"
readonly KATIB_COMPONENTS="katib.kubeflow.org/component in (controller,db-manager,mysql)"
readonly NAMESPACE="kubeflow"
readonly TRAINER_IMAGE="katib-hp-trainer:0.1.0-cpu"
readonly EXPERIMENTS=(digits-bayes-cpu digits-hyperband-cpu)
readonly OBJECTIVE_METRIC="val_accuracy"
KATIB_READY_TIMEOUT="${KATIB_READY_TIMEOUT:-15m}"
EXPERIMENT_TIMEOUT_S="${EXPERIMENT_TIMEOUT_S:-2400}"
readonly POLL_S=15

log() { printf '[kind-e2e] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage_error() { log "$*"; log "usage: scripts/kind-e2e.sh [up|test|down|all]"; exit 2; }

# Every kubectl call goes to the kind cluster's context, never to whatever the current context is.
kc() { kubectl --context "${KUBE_CONTEXT}" "$@"; }

check_inputs() {
  if [[ ! "${CLUSTER_NAME}" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]]; then
    usage_error "KIND_CLUSTER must be a DNS label (lowercase letters, digits, '-'): got '${CLUSTER_NAME}'"
  fi
  if [[ ! "${EXPERIMENT_TIMEOUT_S}" =~ ^[0-9]+$ ]]; then
    usage_error "EXPERIMENT_TIMEOUT_S must be a whole number of seconds: got '${EXPERIMENT_TIMEOUT_S}'"
  fi
  if [[ ! "${KATIB_READY_TIMEOUT}" =~ ^[0-9]+[smh]$ ]]; then
    usage_error "KATIB_READY_TIMEOUT must look like 900s, 15m or 1h: got '${KATIB_READY_TIMEOUT}'"
  fi
}

require_tools() {
  local missing=() tool
  for tool in docker kind kubectl; do
    command -v "${tool}" >/dev/null 2>&1 || missing+=("${tool}")
  done
  if ((${#missing[@]} > 0)); then
    log "missing required tool(s): ${missing[*]}"
    log "install docker (https://docs.docker.com/engine/install/), kind >= 0.20 and kubectl >= 1.29"
    exit 2
  fi
  if ! docker info >/dev/null 2>&1; then
    log "docker is installed but its daemon is not reachable ('docker info' failed); start it and retry"
    exit 2
  fi
}

cluster_exists() {
  local name
  while IFS= read -r name; do
    [[ "${name}" == "${CLUSTER_NAME}" ]] && return 0
  done < <(kind get clusters 2>/dev/null)
  return 1
}

# `kubectl wait -l` fails outright while no pod matches yet, so first wait for the pods to exist.
wait_for_pods_to_exist() {
  local selector="$1" deadline=$((SECONDS + 300))
  until [[ -n "$(kc get pod -n "${NAMESPACE}" -l "${selector}" -o name 2>/dev/null)" ]]; do
    ((SECONDS < deadline)) || die "no pods matching '${selector}' in ${NAMESPACE} after 5 minutes"
    sleep 5
  done
}

cmd_up() {
  require_tools
  # kubectl's built-in kustomize clones the remote Katib manifests with git.
  command -v git >/dev/null 2>&1 || { log "missing required tool(s): git (for kubectl apply -k of a GitHub URL)"; exit 2; }
  if cluster_exists; then
    log "reusing existing kind cluster '${CLUSTER_NAME}'"
  else
    log "creating kind cluster '${CLUSTER_NAME}' from ${KIND_CONFIG}"
    kind create cluster --name "${CLUSTER_NAME}" --config "${KIND_CONFIG}" --wait 5m
  fi
  kc wait --for=condition=ready --timeout=10m node --all

  log "installing Katib standalone v0.19.0 (fetched from GitHub)"
  kc apply -k "${KATIB_INSTALL}"
  wait_for_pods_to_exist "${KATIB_COMPONENTS}"
  log "waiting up to ${KATIB_READY_TIMEOUT} for the Katib controller, db-manager and mysql pods"
  if ! kc wait --for=condition=ready --timeout="${KATIB_READY_TIMEOUT}" -l "${KATIB_COMPONENTS}" -n "${NAMESPACE}" pod; then
    kc get pods -n "${NAMESPACE}" -o wide || true
    die "Katib did not become ready"
  fi
  # katib-standalone already labels kubeflow; labelling again is harmless and keeps this explicit.
  kc label namespace "${NAMESPACE}" katib.kubeflow.org/metrics-collector-injection=enabled --overwrite
  log "Katib is ready on context ${KUBE_CONTEXT}"
}

build_and_load_image() {
  log "building ${TRAINER_IMAGE}"
  docker build --build-arg VARIANT=cpu -t "${TRAINER_IMAGE}" "${ROOT}"
  log "loading ${TRAINER_IMAGE} into kind cluster '${CLUSTER_NAME}'"
  kind load docker-image "${TRAINER_IMAGE}" --name "${CLUSTER_NAME}"
}

katib_hp_cli() {
  if [[ -x "${ROOT}/.venv/bin/katib-hp" ]]; then
    printf '%s\n' "${ROOT}/.venv/bin/katib-hp"
  elif command -v katib-hp >/dev/null 2>&1; then
    command -v katib-hp
  else
    die "katib-hp not found: run 'make setup' first"
  fi
}

# Regenerate the CPU Experiments from examples/kind/ into a scratch folder, insist that the checked-in
# manifests match (so the cluster runs what the repository holds), then lint them.
regenerate_and_validate() {
  local cli tmp src name
  cli="$(katib_hp_cli)"
  tmp="$(mktemp -d)"
  for src in "${ROOT}"/examples/kind/*.yaml; do
    name="$(basename "${src}")"
    "${cli}" generate -q "${src}" --output "${tmp}/${name}"
    if ! diff -u "${ROOT}/manifests/cpu/${name}" "${tmp}/${name}"; then
      rm -rf "${tmp}"
      die "manifests/cpu/${name} is stale: run 'make manifests'"
    fi
  done
  rm -rf "${tmp}"
  log "linting manifests/cpu/*.yaml"
  "${cli}" validate "${ROOT}"/manifests/cpu/*.yaml
}

# katib-hp's own client, always on the kind cluster's context.
khp() { "$(katib_hp_cli)" "$@" --context "${KUBE_CONTEXT}" -n "${NAMESPACE}"; }

# The first Experiment goes through `katib-hp submit` (our client, after the API server's dry run), the
# others through `kubectl apply`, so both paths meet the real webhook.
apply_experiment() {
  local name="$1" index="$2"
  # A leftover run with the same name would be reported instead of this one.
  kc delete experiment "${name}" -n "${NAMESPACE}" --ignore-not-found --wait=true --timeout=5m
  # The admission webhook can lag a little behind the controller pod's readiness.
  local attempt
  for attempt in 1 2 3 4 5 6; do
    if ((index == 0)); then
      if khp submit "${ROOT}/manifests/cpu/${name}.yaml" --server-dry-run && \
         khp submit "${ROOT}/manifests/cpu/${name}.yaml"; then
        return 0
      fi
    elif kc apply -f "${ROOT}/manifests/cpu/${name}.yaml"; then
      return 0
    fi
    log "apply of ${name} failed (attempt ${attempt}/6); retrying in 10 s"
    sleep 10
  done
  die "could not create Experiment ${name}"
}

exp_field() { kc get experiment "$1" -n "${NAMESPACE}" -o "jsonpath=$2" 2>/dev/null || true; }

# Prints Succeeded, Failed or Timeout.
wait_for_experiment() {
  local name="$1" deadline=$((SECONDS + EXPERIMENT_TIMEOUT_S)) state
  while ((SECONDS < deadline)); do
    state="$(exp_field "${name}" '{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}')"
    case " ${state} " in
      *" Succeeded "*) echo Succeeded; return 0 ;;
      *" Failed "*) echo Failed; return 0 ;;
    esac
    log "${name}: ${state:-pending} (trials succeeded: $(exp_field "${name}" '{.status.trialsSucceeded}'))"
    sleep "${POLL_S}"
  done
  echo Timeout
}

is_number() { [[ "$1" =~ ^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$ ]]; }

# Prints one summary line on success; explains each failed check on stderr and returns 1 otherwise.
verify_experiment() {
  local name="$1" ok=0 succeeded trials best value
  succeeded="$(exp_field "${name}" '{.status.conditions[?(@.type=="Succeeded")].status}')"
  trials="$(exp_field "${name}" '{.status.trialsSucceeded}')"
  best="$(exp_field "${name}" '{.status.currentOptimalTrial.bestTrialName}')"
  value="$(exp_field "${name}" "{.status.currentOptimalTrial.observation.metrics[?(@.name==\"${OBJECTIVE_METRIC}\")].latest}")"
  if [[ "${succeeded}" != "True" ]]; then
    log "${name}: condition Succeeded is '${succeeded:-absent}', expected True"; ok=1
  fi
  if [[ ! "${trials}" =~ ^[0-9]+$ ]] || ((trials < 1)); then
    log "${name}: status.trialsSucceeded is '${trials:-absent}', expected >= 1"; ok=1
  fi
  if [[ -z "${best}" ]]; then
    log "${name}: status.currentOptimalTrial.bestTrialName is empty"; ok=1
  fi
  if ! is_number "${value}"; then
    log "${name}: best trial's ${OBJECTIVE_METRIC} is '${value:-absent}', expected a number"; ok=1
  fi
  if ((ok == 0)); then
    printf '  %-24s Succeeded  trials succeeded: %-3s best: %s  %s=%s\n' \
      "${name}" "${trials}" "${best}" "${OBJECTIVE_METRIC}" "${value}"
  fi
  return "${ok}"
}

debug_experiment() {
  local name="$1" trial
  log "----- debugging ${name} -----"
  kc describe experiment "${name}" -n "${NAMESPACE}" || true
  kc get suggestion "${name}" -n "${NAMESPACE}" -o wide || true
  kc describe suggestion "${name}" -n "${NAMESPACE}" || true
  kc get trials -n "${NAMESPACE}" -l "katib.kubeflow.org/experiment=${name}" -o wide || true
  kc get pods -n "${NAMESPACE}" -o wide || true
  # The suggestion service's pod carries the experiment label.
  kc logs -n "${NAMESPACE}" -l "katib.kubeflow.org/experiment=${name}" --all-containers --prefix --tail=40 || true
  # Trial Jobs are named after their trials; with retain: false finished ones are gone, so this may be empty.
  while IFS= read -r trial; do
    [[ -n "${trial}" ]] || continue
    log "last logs of trial ${trial} (StdOut collector)"
    kc logs -n "${NAMESPACE}" -l "job-name=${trial}" -c metrics-logger-and-collector --tail=40 || true
    kc logs -n "${NAMESPACE}" -l "job-name=${trial}" -c training-container --tail=40 || true
  done < <(kc get trials -n "${NAMESPACE}" -l "katib.kubeflow.org/experiment=${name}" \
    -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}' 2>/dev/null || true)
  kc logs -n "${NAMESPACE}" -l katib.kubeflow.org/component=controller --tail=40 || true
}

cmd_test() {
  require_tools
  cluster_exists || die "kind cluster '${CLUSTER_NAME}' does not exist: run 'scripts/kind-e2e.sh up' first"
  build_and_load_image
  regenerate_and_validate
  local name result line index=0 failed=() summary=()
  for name in "${EXPERIMENTS[@]}"; do
    log "creating Experiment ${name}"
    apply_experiment "${name}" "${index}"
    index=$((index + 1))
  done
  for name in "${EXPERIMENTS[@]}"; do
    result="$(wait_for_experiment "${name}")"
    log "${name}: ${result}"
    # katib-hp must agree with kubectl: watch exits 0 only with a succeeded trial; trials/best read it back.
    if [[ "${result}" == "Succeeded" ]] && line="$(verify_experiment "${name}")" && \
       khp watch "${name}" --timeout 120 && khp trials "${name}" && khp best "${name}" -o args; then
      summary+=("${line}")
      continue
    fi
    [[ "${result}" == "Timeout" ]] && log "${name}: no Succeeded/Failed condition after ${EXPERIMENT_TIMEOUT_S} s"
    [[ "${result}" == "Failed" ]] && verify_experiment "${name}" >/dev/null || true
    failed+=("${name}")
    debug_experiment "${name}"
  done
  echo "kind e2e summary (cluster ${CLUSTER_NAME}, Katib v0.19.0, image ${TRAINER_IMAGE}):"
  if ((${#summary[@]} > 0)); then
    printf '%s\n' "${summary[@]}"
  fi
  if ((${#failed[@]} > 0)); then
    printf '  FAILED: %s\n' "${failed[@]}"
    return 1
  fi
  echo "  all ${#EXPERIMENTS[@]} Experiments passed"
}

cmd_down() {
  command -v kind >/dev/null 2>&1 || { log "missing required tool(s): kind"; exit 2; }
  if cluster_exists; then
    log "deleting kind cluster '${CLUSTER_NAME}'"
    kind delete cluster --name "${CLUSTER_NAME}"
  else
    log "kind cluster '${CLUSTER_NAME}' does not exist; nothing to delete"
  fi
}

on_exit_all() {
  local rc=$?
  if [[ "${KEEP_CLUSTER:-0}" == "1" ]]; then
    log "KEEP_CLUSTER=1: keeping cluster '${CLUSTER_NAME}' (context ${KUBE_CONTEXT}); remove it with: scripts/kind-e2e.sh down"
  else
    cmd_down || log "could not delete cluster '${CLUSTER_NAME}'"
  fi
  exit "${rc}"
}

cmd_all() {
  require_tools
  trap on_exit_all EXIT
  cmd_up
  cmd_test
}

main() {
  (($# <= 1)) || usage_error "expected at most one subcommand, got $#"
  check_inputs
  case "${1:-all}" in
    up) cmd_up ;;
    test) cmd_test ;;
    down) cmd_down ;;
    all) cmd_all ;;
    -h | --help) sed -n '2,19p' "${BASH_SOURCE[0]}" ;;
    *) usage_error "unknown subcommand '$1'" ;;
  esac
}

main "$@"
