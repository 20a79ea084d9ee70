//! The components a scenario can name, and what the scenario layer needs to know about each:
//! its default model, how its config is read from a layered tree, the actors and request kinds
//! it refers to, and how it is spawned into a [`Sim`].
//!
//! This is the one place that lists the built-in component kinds; adding a family (the log,
//! caches, leases) means adding its kinds here and a variant to [`Msg`].

use crate::actor::ActorId;
use crate::engine::sim::{Sim, SimError};
use crate::model::Carry;
use crate::model::cache::{Cache, CacheConfig};
use crate::model::log::deployment;
use crate::model::log::{Broker, BrokerConfig, ConsumerGroupConfig, Log, Producer, ProducerConfig};
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
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Client,
        Kind::Service,
        Kind::Database,
        Kind::LoadBalancer,
        Kind::Cache,
        Kind::Broker,
        Kind::Producer,
        Kind::ConsumerGroup,
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
    /// Boxed: the largest config by far (a consumer's, an autoscaler's, a rollout's).
    ConsumerGroup(Box<ConsumerGroupConfig>),
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
            Kind::ConsumerGroup => Config::ConsumerGroup(tree::from_node(node)?),
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
        }
    }

    /// The request kinds this component serves, by index, if it serves named kinds.
    pub fn kind_names(&self) -> Option<Vec<&str>> {
        match self {
            Config::Service(c) => Some(c.kind_names()),
            Config::Database(c) => Some(c.kind_names()),
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
        }
    }
}
