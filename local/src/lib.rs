//! The whole system on one machine, with no AWS and no Docker: the moto server as the AWS API, an
//! API Gateway stand-in on loopback, an SQS poller feeding the process handler, and a Fargate
//! stand-in that runs the agent as a local process. Every piece calls the same handler code as
//! the Lambdas and reaches the emulator through the standard `AWS_ENDPOINT_URL`.

pub mod gateway;
pub mod metrics;
pub mod poller;
pub mod provision;
pub mod runner;
pub mod stack;
