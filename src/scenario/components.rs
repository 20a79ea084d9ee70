//! The components a scenario can name, and what the scenario layer needs to know about each:
//! its default model, how its config is read from a layered tree, the actors and request kinds
//! it refers to, and how it is spawned into a [`Sim`].
//!
//! This is the one place that lists the built-in component kinds; adding a family (the log,
//! caches, leases) means adding its kinds here and a variant to [`Msg`].
//!
//! The replicated store (catalogue L1) is four kinds, `ReplNode`, `Sentinel`, `ReplClient` and
//! `PowerSwitch`, rather than one grouped `ReplicatedStore(nodes: [...])`: split brain is about
//! where each process stands when the network splits, and faults name hosts, so each node,
//! watcher and client must be able to sit on its own host (a grouped component, like a
//! consumer group, has one). The components of one store find each other by their node list:
//! every `ReplNode` and `ReplClient` naming the same set of nodes shares one oracle
//! ([`ReplLog`], whose `oracle.*` metrics the checks read), handed from the first of them
//! spawned to the next; loading checks that they agree (`configure_repl` in `load.rs`).

use crate::actor::ActorId;
use crate::engine::sim::{Sim, SimError};
use crate::model::Carry;
use crate::model::cache::{Cache, CacheConfig};
use crate::model::coord::raft::{
    LeaderKiller, LeaderKillerConfig, Raft, RaftClient, RaftClientConfig, RaftConfig, RaftNode,
    RaftObserver, RaftWatch,
};
use crate::model::coord::repl::{
    EpochStore, EpochStoreConfig, PowerSwitch, PowerSwitchConfig, Repl, ReplClient,
    ReplClientConfig, ReplLog, ReplNode, ReplNodeConfig, ReplWatch, Sentinel, SentinelConfig,
};
use crate::model::coord::{
    FencedStorage, FencedStorageConfig, Lease, LockService, LockServiceConfig, RegisterClient,
    RegisterClientConfig, RegisterStore, RegisterStoreConfig, Worker, WorkerConfig,
};
use crate::model::log::deployment;
use crate::model::log::{Broker, BrokerConfig, ConsumerGroupConfig, Log, Producer, ProducerConfig};
use crate::model::rpc::deployment::{self as service_deployment, DeploymentConfig};
use crate::model::rpc::{
    Client, ClientConfig, ConfigError, Database, DatabaseConfig, KindRef, LoadBalancer,
    LoadBalancerConfig, Rpc, Service, ServiceConfig, Validate,
};
use crate::net::HostId;
use crate::scenario::tree::{self, Node};

/// The message type of every scenario's simulation: one variant per component family, so
/// families (and users' own actors) can share one `Sim`.
#[derive(Clone, Debug)]
pub enum Msg {
    Rpc(Rpc),
    Log(Log),
    Lease(Lease),
    Raft(Raft),
    Repl(Repl),
}

impl Carry<Rpc> for Msg {
    fn wrap(inner: Rpc) -> Self {
        Msg::Rpc(inner)
    }

    fn unwrap(self) -> Option<Rpc> {
        match self {
            Msg::Rpc(r) => Some(r),
            _ => None,
        }
    }
}

impl Carry<Log> for Msg {
    fn wrap(inner: Log) -> Self {
        Msg::Log(inner)
    }

    fn unwrap(self) -> Option<Log> {
        match self {
            Msg::Log(l) => Some(l),
            _ => None,
        }
    }
}

impl Carry<Lease> for Msg {
    fn wrap(inner: Lease) -> Self {
        Msg::Lease(inner)
    }

    fn unwrap(self) -> Option<Lease> {
        match self {
            Msg::Lease(l) => Some(l),
            _ => None,
        }
    }
}

impl Carry<Raft> for Msg {
    fn wrap(inner: Raft) -> Self {
        Msg::Raft(inner)
    }

    fn unwrap(self) -> Option<Raft> {
        match self {
            Msg::Raft(r) => Some(r),
            _ => None,
        }
    }
}

impl Carry<Repl> for Msg {
    fn wrap(inner: Repl) -> Self {
        Msg::Repl(inner)
    }

    fn unwrap(self) -> Option<Repl> {
        match self {
            Msg::Repl(r) => Some(r),
            _ => None,
        }
    }
}

/// A kind of component, as written in a scenario: `Service(...)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Client,
    Service,
    Database,
    LoadBalancer,
    Cache,
    Broker,
    Producer,
    ConsumerGroup,
    LockService,
    FencedStorage,
    JobWorker,
    RegisterStore,
    RegisterClient,
    RaftNode,
    RaftClient,
    ReplNode,
    Sentinel,
    ReplClient,
    PowerSwitch,
    Deployment,
    EpochStore,
    LeaderKiller,
}

impl Kind {
    pub const ALL: [Kind; 22] = [
        Kind::Client,
        Kind::Service,
        Kind::Database,
        Kind::LoadBalancer,
        Kind::Cache,
        Kind::Broker,
        Kind::Producer,
        Kind::ConsumerGroup,
        Kind::LockService,
        Kind::FencedStorage,
        Kind::JobWorker,
        Kind::RegisterStore,
        Kind::RegisterClient,
        Kind::RaftNode,
        Kind::RaftClient,
        Kind::ReplNode,
        Kind::Sentinel,
        Kind::ReplClient,
        Kind::PowerSwitch,
        Kind::Deployment,
        Kind::EpochStore,
        Kind::LeaderKiller,
    ];

    /// The name written in a scenario.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Client => "Client",
            Kind::Service => "Service",
            Kind::Database => "Database",
            Kind::LoadBalancer => "LoadBalancer",
            Kind::Cache => "Cache",
            Kind::Broker => "Broker",
            Kind::Producer => "Producer",
            Kind::ConsumerGroup => "ConsumerGroup",
            Kind::LockService => "LockService",
            Kind::FencedStorage => "FencedStorage",
            Kind::JobWorker => "JobWorker",
            Kind::RegisterStore => "RegisterStore",
            Kind::RegisterClient => "RegisterClient",
            Kind::RaftNode => "RaftNode",
            Kind::RaftClient => "RaftClient",
            Kind::ReplNode => "ReplNode",
            Kind::Sentinel => "Sentinel",
            Kind::ReplClient => "ReplClient",
            Kind::PowerSwitch => "PowerSwitch",
            Kind::Deployment => "Deployment",
            Kind::EpochStore => "EpochStore",
            Kind::LeaderKiller => "LeaderKiller",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The model a component of this kind uses when it names none.
    pub fn default_model(self) -> &'static str {
        match self {
            Kind::Client => "rpc/client",
            Kind::Service => "rpc/service",
            Kind::Database => "rpc/postgres",
            Kind::LoadBalancer => "rpc/load-balancer",
            Kind::Cache => "cache/redis",
            Kind::Broker => "kafka/broker",
            Kind::Producer => "kafka/producer",
            Kind::ConsumerGroup => "kafka/consumer-group",
            Kind::LockService => "coord/redis-lock",
            Kind::FencedStorage => "coord/fenced-storage",
            Kind::JobWorker => "coord/job-worker",
            Kind::RegisterStore => "coord/register",
            Kind::RegisterClient => "coord/register-client",
            Kind::RaftNode => "coord/raft",
            Kind::RaftClient => "coord/raft-client",
            Kind::ReplNode => "coord/redis-replicated",
            Kind::Sentinel => "coord/sentinel",
            Kind::ReplClient => "coord/repl-client",
            Kind::PowerSwitch => "coord/power-switch",
            Kind::Deployment => "rpc/deployment",
            Kind::EpochStore => "coord/epoch-store",
            Kind::LeaderKiller => "coord/leader-killer",
        }
    }
}

/// A component's typed config, read from its layered tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Config {
    Client(ClientConfig),
    Service(ServiceConfig),
    Database(DatabaseConfig),
    LoadBalancer(LoadBalancerConfig),
    Cache(CacheConfig),
    Broker(BrokerConfig),
    Producer(ProducerConfig),
    /// Boxed: a group's config (a consumer, an autoscaler, probes) dwarfs the others.
    ConsumerGroup(Box<ConsumerGroupConfig>),
    LockService(LockServiceConfig),
    FencedStorage(FencedStorageConfig),
    JobWorker(WorkerConfig),
    RegisterStore(RegisterStoreConfig),
    RegisterClient(RegisterClientConfig),
    RaftNode(RaftConfig),
    RaftClient(RaftClientConfig),
    ReplNode(ReplNodeConfig),
    Sentinel(SentinelConfig),
    ReplClient(ReplClientConfig),
    PowerSwitch(PowerSwitchConfig),
    /// Boxed: a whole service config and an autoscaler.
    Deployment(Box<DeploymentConfig>),
    EpochStore(EpochStoreConfig),
    LeaderKiller(LeaderKillerConfig),
}

impl Config {
    /// Reads a config of `kind` from its tree (model defaults, scenario fields and overrides
    /// merged).
    pub fn from_node(kind: Kind, node: &Node) -> Result<Config, tree::Error> {
        Ok(match kind {
            Kind::Client => Config::Client(tree::from_node(node)?),
            Kind::Service => Config::Service(tree::from_node(node)?),
            Kind::Database => Config::Database(tree::from_node(node)?),
            Kind::LoadBalancer => Config::LoadBalancer(tree::from_node(node)?),
            Kind::Cache => Config::Cache(tree::from_node(node)?),
            Kind::Broker => Config::Broker(tree::from_node(node)?),
            Kind::Producer => Config::Producer(tree::from_node(node)?),
            Kind::ConsumerGroup => Config::ConsumerGroup(Box::new(tree::from_node(node)?)),
            Kind::LockService => Config::LockService(tree::from_node(node)?),
            Kind::FencedStorage => Config::FencedStorage(tree::from_node(node)?),
            Kind::JobWorker => Config::JobWorker(tree::from_node(node)?),
            Kind::RegisterStore => Config::RegisterStore(tree::from_node(node)?),
            Kind::RegisterClient => Config::RegisterClient(tree::from_node(node)?),
            Kind::RaftNode => Config::RaftNode(tree::from_node(node)?),
            Kind::RaftClient => Config::RaftClient(tree::from_node(node)?),
            Kind::ReplNode => Config::ReplNode(tree::from_node(node)?),
            Kind::Sentinel => Config::Sentinel(tree::from_node(node)?),
            Kind::ReplClient => Config::ReplClient(tree::from_node(node)?),
            Kind::PowerSwitch => Config::PowerSwitch(tree::from_node(node)?),
            Kind::Deployment => Config::Deployment(Box::new(tree::from_node(node)?)),
            Kind::EpochStore => Config::EpochStore(tree::from_node(node)?),
            Kind::LeaderKiller => Config::LeaderKiller(tree::from_node(node)?),
        })
    }

    pub fn kind(&self) -> Kind {
        match self {
            Config::Client(_) => Kind::Client,
            Config::Service(_) => Kind::Service,
            Config::Database(_) => Kind::Database,
            Config::LoadBalancer(_) => Kind::LoadBalancer,
            Config::Cache(_) => Kind::Cache,
            Config::Broker(_) => Kind::Broker,
            Config::Producer(_) => Kind::Producer,
            Config::ConsumerGroup(_) => Kind::ConsumerGroup,
            Config::LockService(_) => Kind::LockService,
            Config::FencedStorage(_) => Kind::FencedStorage,
            Config::JobWorker(_) => Kind::JobWorker,
            Config::RegisterStore(_) => Kind::RegisterStore,
            Config::RegisterClient(_) => Kind::RegisterClient,
            Config::RaftNode(_) => Kind::RaftNode,
            Config::RaftClient(_) => Kind::RaftClient,
            Config::ReplNode(_) => Kind::ReplNode,
            Config::Sentinel(_) => Kind::Sentinel,
            Config::ReplClient(_) => Kind::ReplClient,
            Config::PowerSwitch(_) => Kind::PowerSwitch,
            Config::Deployment(_) => Kind::Deployment,
            Config::EpochStore(_) => Kind::EpochStore,
            Config::LeaderKiller(_) => Kind::LeaderKiller,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Config::Client(c) => c.validate(),
            Config::Service(c) => c.validate(),
            Config::Database(c) => c.validate(),
            Config::LoadBalancer(c) => c.validate(),
            Config::Cache(c) => c.validate(),
            Config::Broker(c) => c.validate(),
            Config::Producer(c) => c.validate(),
            Config::ConsumerGroup(c) => c.validate(),
            Config::LockService(c) => c.validate(),
            Config::FencedStorage(c) => c.validate(),
            Config::JobWorker(c) => c.validate(),
            Config::RegisterStore(c) => c.validate(),
            Config::RegisterClient(c) => c.validate(),
            Config::RaftNode(c) => c.validate(),
            Config::RaftClient(c) => c.validate(),
            Config::ReplNode(c) => c.validate(),
            Config::Sentinel(c) => c.validate(),
            Config::ReplClient(c) => c.validate(),
            Config::PowerSwitch(c) => c.validate(),
            Config::Deployment(c) => c.validate(),
            Config::EpochStore(c) => c.validate(),
            Config::LeaderKiller(c) => c.validate(),
        }
    }

    /// The actor names the config refers to, with their field paths.
    pub fn targets(&self) -> Vec<(String, &str)> {
        match self {
            Config::Client(c) => c.targets(),
            Config::Service(c) => c.targets(),
            Config::Database(_) | Config::Cache(_) | Config::Broker(_) => Vec::new(),
            Config::LoadBalancer(c) => c.targets(),
            Config::Producer(c) => c.targets(),
            Config::ConsumerGroup(c) => c.targets(),
            Config::JobWorker(c) => c.targets(),
            Config::RegisterClient(c) => c.targets(),
            Config::LockService(_) | Config::FencedStorage(_) | Config::RegisterStore(_) => {
                Vec::new()
            }
            Config::RaftNode(c) => c.targets(),
            Config::RaftClient(c) => c.targets(),
            Config::LeaderKiller(c) => c.targets(),
            // A node names itself among its peers: that one is not a call.
            Config::ReplNode(c) => c.targets(),
            Config::Sentinel(c) => c.targets(),
            Config::ReplClient(c) => c.targets(),
            Config::Deployment(c) => c.targets(),
            Config::PowerSwitch(_) | Config::EpochStore(_) => Vec::new(),
        }
    }

    /// The request kinds this component serves, by index, if it serves named kinds.
    pub fn kind_names(&self) -> Option<Vec<&str>> {
        match self {
            Config::Service(c) => Some(c.kind_names()),
            Config::Database(c) => Some(c.kind_names()),
            // Its balancer forwards to pods that are all the same service.
            Config::Deployment(c) => Some(c.service.kind_names()),
            _ => None,
        }
    }

    /// The backends a request to this component may be forwarded to (a load balancer's).
    pub fn forwards_to(&self) -> Option<&[String]> {
        match self {
            Config::LoadBalancer(c) => Some(&c.backends),
            _ => None,
        }
    }

    /// Every request-kind reference: (field path, the actor it is sent to, the reference).
    pub fn kind_refs_mut(&mut self) -> Vec<(String, String, &mut KindRef)> {
        match self {
            Config::Client(c) => c.kind_refs_mut(),
            Config::Service(c) => c.kind_refs_mut(),
            Config::LoadBalancer(c) => c.kind_refs_mut(),
            Config::Deployment(c) => c.kind_refs_mut(),
            _ => Vec::new(),
        }
    }

    /// Spawns the component as actor `name` on `host`. The config was validated when the
    /// scenario was loaded, so building it again at every restart cannot fail.
    pub fn spawn(&self, sim: &mut Sim<Msg>, host: HostId, name: &str) -> Result<ActorId, SimError> {
        const VALID: &str = "the config was validated when the scenario was loaded";
        match self.clone() {
            Config::Client(c) => sim.spawn(host, name, move || {
                Client::<Msg>::new(c.clone()).expect(VALID)
            }),
            Config::Service(c) => {
                // One value, cloned for each incarnation: the clones share the state a service
                // keeps across crashes (its OOM-kill record).
                let proto = Service::<Msg>::new(c).expect(VALID);
                sim.spawn(host, name, move || proto.clone())
            }
            Config::Database(c) => sim.spawn(host, name, move || {
                Database::<Msg>::new(c.clone()).expect(VALID)
            }),
            Config::LoadBalancer(c) => sim.spawn(host, name, move || {
                LoadBalancer::<Msg>::new(c.clone()).expect(VALID)
            }),
            Config::Cache(c) => sim.spawn(host, name, move || {
                Cache::<Msg>::new(c.clone()).expect(VALID)
            }),
            Config::Broker(c) => {
                // Clones share the disk: the logs and offsets outlive a crash.
                let proto = Broker::<Msg>::new(c).expect(VALID);
                sim.spawn(host, name, move || proto.clone())
            }
            Config::Producer(c) => sim.spawn(host, name, move || {
                Producer::<Msg>::new(c.clone()).expect(VALID)
            }),
            Config::ConsumerGroup(c) => {
                // The replicas first (the controller looks them up at its start), each
                // sharing its `deployed` flag and the group's ledger with its incarnations.
                let deployed = deployment::build::<Msg>(&c, name).expect(VALID);
                for (pod, proto) in deployed.replicas {
                    sim.spawn(host, &pod, move || proto.clone())?;
                }
                let controller = deployed.controller;
                sim.spawn(host, name, move || controller.clone())
            }
            // The lease family's servers keep their state in `Durable` cells inside one
            // value, so each incarnation is a clone of it (a restart keeps the lock table
            // and the ledger, as Redis with an AOF and a payment provider would).
            Config::LockService(c) => {
                let proto = LockService::<Msg>::new(c).expect(VALID);
                sim.spawn(host, name, move || proto.clone())
            }
            Config::FencedStorage(c) => {
                let proto = FencedStorage::<Msg>::new(c).expect(VALID);
                sim.spawn(host, name, move || proto.clone())
            }
            Config::RegisterStore(c) => {
                let proto = RegisterStore::<Msg>::new(c).expect(VALID);
                sim.spawn(host, name, move || proto.clone())
            }
            Config::JobWorker(c) => sim.spawn(host, name, move || {
                Worker::<Msg>::new(c.clone()).expect(VALID)
            }),
            Config::RegisterClient(c) => sim.spawn(host, name, move || {
                RegisterClient::<Msg>::new(c.clone()).expect(VALID)
            }),
            Config::RaftNode(c) => {
                // The clones share the node's disk (its term, vote and log survive crashes)
                // and the group's observer.
                let mut members = c.peers.clone();
                members.push(name.to_string());
                let watch = raft_watch(sim, &members);
                let proto = RaftNode::<Msg>::new(c).expect(VALID).with_observer(watch);
                sim.spawn(host, name, move || proto.clone())
            }
            Config::LeaderKiller(c) => {
                let watch = raft_watch(sim, &c.group);
                let proto = LeaderKiller::<Msg>::new(c, watch).expect(VALID);
                sim.spawn(host, name, move || proto.clone())
            }
            Config::RaftClient(c) => {
                let proto = RaftClient::<Msg>::new(c).expect(VALID);
                sim.spawn(host, name, move || proto.clone())
            }
            // Clones share the node's disk (log, epoch, whom it follows) and the store's
            // oracle.
            Config::ReplNode(c) => {
                let watch = repl_watch(sim, &c.peers);
                let proto = ReplNode::<Msg>::new(c).expect(VALID).with_watch(watch);
                sim.spawn(host, name, move || proto.clone())
            }
            Config::ReplClient(c) => {
                let watch = repl_watch(sim, &c.nodes);
                let proto = ReplClient::<Msg>::new(c).expect(VALID).with_watch(watch);
                sim.spawn(host, name, move || proto.clone())
            }
            Config::Sentinel(c) => {
                let proto = Sentinel::<Msg>::new(c).expect(VALID);
                sim.spawn(host, name, move || proto.clone())
            }
            Config::PowerSwitch(c) => sim.spawn(host, name, move || {
                PowerSwitch::<Msg>::with_config(c.clone())
            }),
            Config::Deployment(c) => {
                // The pods first (the balancer looks them up at its start), each a clone of
                // one value as a plain service is; then the balancer and controller.
                let deployed = service_deployment::build::<Msg>(&c, name).expect(VALID);
                for (pod, proto) in deployed.replicas {
                    sim.spawn(host, &pod, move || proto.clone())?;
                }
                let controller = deployed.controller;
                sim.spawn(host, name, move || controller.clone())
            }
            // Clones share nothing: a restarted store would start empty (no scenario restarts
            // it; it stands for durable storage).
            Config::EpochStore(c) => sim.spawn(host, name, move || {
                EpochStore::<Msg>::with_config(c.clone())
            }),
        }
    }
}

/// The oracle of the replicated store whose nodes are `nodes` (in any order): the one an
/// already spawned node or client of the same store reports to, or a new one.
fn repl_watch(sim: &Sim<Msg>, nodes: &[String]) -> ReplWatch {
    let mut want: Vec<&str> = nodes.iter().map(String::as_str).collect();
    want.sort_unstable();
    let same = |names: &[String]| {
        let mut have: Vec<&str> = names.iter().map(String::as_str).collect();
        have.sort_unstable();
        have == want
    };
    for i in 0..sim.actor_count() {
        let id = ActorId(i as u32);
        let found = if let Some(n) = sim.inspect::<ReplNode<Msg>>(id) {
            same(&n.config().peers).then(|| n.watch()).flatten()
        } else if let Some(c) = sim.inspect::<ReplClient<Msg>>(id) {
            same(&c.config().nodes).then(|| c.watch()).flatten()
        } else {
            None
        };
        if let Some(w) = found {
            return w;
        }
    }
    ReplLog::shared()
}

/// The observer of the Raft group whose members are `members` (in any order, repeats
/// ignored; a node's own name is among its peers or not): the one an already spawned node or
/// leader killer of the same group reports to or reads, or a new one. So every `RaftNode`
/// naming the same members shares one [`RaftObserver`], which counts each safety violation
/// once for the group and tells a `LeaderKiller` who leads.
fn raft_watch(sim: &Sim<Msg>, members: &[String]) -> RaftWatch {
    let set = |names: &[String], me: Option<&str>| {
        let mut v: Vec<&str> = names.iter().map(String::as_str).chain(me).collect();
        v.sort_unstable();
        v.dedup();
        v.into_iter().map(str::to_string).collect::<Vec<String>>()
    };
    let want = set(members, None);
    for i in 0..sim.actor_count() {
        let id = ActorId(i as u32);
        let found = if let Some(n) = sim.inspect::<RaftNode<Msg>>(id) {
            let have = set(&n.config().peers, Some(sim.name_of(id)));
            (have == want).then(|| n.observer()).flatten()
        } else if let Some(k) = sim.inspect::<LeaderKiller<Msg>>(id) {
            (set(&k.config().group, None) == want).then(|| k.observer())
        } else {
            None
        };
        if let Some(w) = found {
            return w;
        }
    }
    RaftObserver::shared()
}
