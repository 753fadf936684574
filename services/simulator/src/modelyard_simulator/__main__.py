from modelyard_simulator.server import main

main()
